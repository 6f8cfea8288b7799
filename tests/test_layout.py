"""The package's layering, read from its source (every import, including those inside
functions): shared services at the bottom, steps on top, no step importing a sibling."""

import ast
from pathlib import Path

import genomamba

ROOT = Path(genomamba.__file__).parent

#: what each part of the package may import (besides itself). Top-level modules
#: (errors, files, device, distributed, settings) are the floor every part may use; ``cli`` and
#: ``__main__`` tie the steps together.
FLOOR = {"errors", "files", "device", "distributed", "settings", "__init__"}
ALLOWED = {
    "ops": set(),
    "data": set(),
    "model": {"ops", "data"},
    "train": {"ops", "data", "model"},
    "score": {"ops", "data", "model"},
    "evaluate": {"ops", "data", "model"},
    "infer": {"ops", "data", "model"},
    "track": {"ops", "data", "model"},
    "convert": {"ops", "data", "model"},
}
STEPS = {"data", "train", "score", "evaluate", "infer", "track", "convert"}


def part_of(module: str) -> str:
    """'genomamba.train.pretrain' -> 'train'; 'genomamba.files' -> 'files'; 'genomamba' -> '__init__'."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports(path: Path, module: str):
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            yield name, node.lineno
            for alias in node.names:  # `from genomamba import files`
                yield f"{name}.{alias.name}", node.lineno


def modules():
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield path, ".".join(parts)


def violations():
    found = []
    for path, module in modules():
        own = part_of(module)
        if own in FLOOR - {"__init__"} or own in ("cli", "__main__") or module == "genomamba":
            allowed = None if own in ("cli", "__main__") else FLOOR
        else:
            allowed = FLOOR | ALLOWED[own] | {own}
        for name, line in imports(path, module):
            if not name.startswith("genomamba.") and name != "genomamba":
                continue
            target = part_of(name)
            if target not in FLOOR and not (ROOT / target).exists() and not (ROOT / f"{target}.py").exists():
                continue  # `from genomamba.x import attr` yields x.attr too
            if allowed is not None and target not in allowed:
                found.append(f"{path.relative_to(ROOT.parent)}:{line}: {module} imports {name}")
    return found


def test_every_part_of_the_package_is_in_the_layer_table():
    parts = {p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert parts == set(ALLOWED), "add new packages to ALLOWED in tests/test_layout.py"


def test_no_step_imports_a_sibling_step_and_layers_point_down():
    assert violations() == []


def test_the_checker_sees_a_violation(tmp_path, monkeypatch):
    """The walk finds a function-local import of a sibling step (so the test above can fail)."""
    pkg = tmp_path / "genomamba"
    (pkg / "train").mkdir(parents=True)
    (pkg / "score").mkdir()
    for d in (pkg, pkg / "train", pkg / "score"):
        (d / "__init__.py").write_text("")
    (pkg / "train" / "x.py").write_text("def f():\n    from genomamba.score.y import z\n")
    (pkg / "score" / "y.py").write_text("from ..train import x\n")
    monkeypatch.setattr(__import__(__name__), "ROOT", pkg)
    found = violations()
    assert any("genomamba.train.x imports genomamba.score.y" in v for v in found)
    assert any("genomamba.score.y imports genomamba.train" in v for v in found)


def test_kernels_live_in_the_package_and_triton_is_imported_only_by_triton_modules():
    assert (ROOT / "ops" / "kernels" / "scan.py").exists()
    assert not (ROOT.parent / "kernels").exists()
    for path, module in modules():
        names = {name for name, _ in imports(path, module)}
        if "triton" in names or any(n.startswith("triton.") for n in names):
            assert module.endswith("_triton") or ".ops.kernels." in module, module
