"""The kill chains of the commands selected in this session, run two at a time (each is
mostly waiting on a subprocess), and the table printed at the end of the session and
written to ``kill_table.json`` in the session's tmp dir (``faults0/``)."""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

_rows: list[dict] = []
_table_path: list[str] = []
_cpu_line: list[str] = []


def _cpu() -> dict:
    """CPU seconds (user + system) of the finished subprocesses and of this process."""
    import resource

    children, me = resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(resource.RUSAGE_SELF)
    return {"runs": children.ru_utime + children.ru_stime, "polling": me.ru_utime + me.ru_stime}


def selected_cases(session) -> list[str]:
    from faults.cases import CASES

    wanted = {item.callspec.params["command"] for item in session.items
              if "command" in getattr(getattr(item, "callspec", None), "params", {})}
    return [name for name in CASES if name in wanted]


@pytest.fixture(scope="session")
def kill_chains(request, tmp_path_factory):
    import torch

    from faults.cases import CASES, KILLS, SEED
    from faults.harness import run_chain

    base = tmp_path_factory.mktemp("faults")
    names = selected_cases(request.session)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cases = {name: CASES[name](base / "work") for name in names}
    finally:
        torch.set_num_threads(threads)
    started, cpu = time.monotonic(), _cpu()
    workers = max(1, min(2, os.cpu_count() or 1))
    with ThreadPoolExecutor(workers) as pool:
        futures = {name: pool.submit(run_chain, case, KILLS, SEED + i, base / "logs" / name)
                   for i, (name, case) in enumerate(cases.items())}
        results = {name: f.result() for name, f in futures.items()}
    wall = time.monotonic() - started
    cpu = {k: round(v - cpu[k], 1) for k, v in _cpu().items()}
    total = cpu["runs"] + cpu["polling"]
    _cpu_line.append(f"{len(results)} chains: {wall:.0f} s wall on {workers} workers; CPU: {cpu['runs']:.0f} s in "
                     f"the runs, {cpu['polling']:.0f} s polling and checking "
                     f"(about {total / 2:.0f} s on two idle cores)")
    _rows.extend(r.row() for r in results.values())
    path = base / "kill_table.json"
    path.write_text(json.dumps({"k": KILLS, "seed": SEED, "workers": workers, "chains_wall_s": round(wall, 1),
                                "cpu_s_runs": cpu["runs"], "cpu_s_polling": cpu["polling"], "rows": _rows,
                                "cpu_line": _cpu_line[-1]}, indent=1) + "\n")
    _table_path.append(str(path))
    return results


def _from_workers(config) -> None:
    """Under pytest-xdist the chains ran in a worker: read its table from the workers' tmp dirs
    (``popen-gwN/faultsN/kill_table.json`` under this session's base tmp dir)."""
    factory = getattr(config, "_tmp_path_factory", None)
    if factory is None or not hasattr(config, "workerinput") and not config.pluginmanager.hasplugin("xdist"):
        return
    for path in sorted(factory.getbasetemp().glob("popen-gw*/faults[0-9]*/kill_table.json")):
        table = json.loads(path.read_text())
        _rows.extend(table["rows"])
        _cpu_line.append(table.get("cpu_line", ""))
        _table_path.append(str(path))


def write_kill_table(terminalreporter):
    """Print the table (called by tests/conftest.py's ``pytest_terminal_summary``: under
    pytest-xdist the controller loads only that conftest)."""
    if not _rows:
        _from_workers(terminalreporter.config)
    if not _rows:
        return
    tr = terminalreporter
    tr.section("what survives what (SIGKILL, then rerun)")
    tr.write_line(f"{'command':<10} {'kills':>5} {'survived':>8} {'identical':>9}  phases (start-up/mid/final)")
    for r in _rows:
        phases = "/".join(str(r["phases"].get(k, 0)) for k in ("startup", "mid", "final"))
        tr.write_line(f"{r['command']:<10} {r['kills']:>5} {r['survived']:>8} {r['identical']:>9}  {phases}"
                      f"   (run {r['reference_s']:.1f} s, chain {r['wall_s']:.0f} s, "
                      f"{r['hidden_leftovers']} hidden leftovers)")
    tr.write_line(_cpu_line[0])
    tr.write_line(f"table: {_table_path[0]}")
