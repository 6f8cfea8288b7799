"""``genomamba convert``: import a Caduceus checkpoint, or export a genomamba model to one.

``import_caduceus(src, out)`` writes an ordinary genomamba masked-LM directory (every
command loads it as it is) plus ``caduceus.json`` (provenance: source path, its config,
the sha256 of its weight file, its weight names and dtypes) and
``caduceus_extra.safetensors`` (the vocabulary rows genomamba has no token for).
``export_caduceus(model, out)`` writes ``config.json`` + ``model.safetensors`` as
Caduceus's ``save_pretrained`` does; a model imported here exports to the same tensors
and config it came from. Everything is checked before anything is written, and every
directory is written atomically.
"""

from __future__ import annotations

import json
from pathlib import Path

from genomamba.convert import caduceus as cad
from genomamba.errors import GenomambaError

FORMAT_VERSION = 1


def _prefix(state: dict) -> str:
    return "caduceus." if any(k.startswith("caduceus.") for k in state) else ""


def import_caduceus(src, out, command: str | None = None) -> Path:
    import torch
    from safetensors.torch import save as save_safetensors

    from genomamba import __version__
    from genomamba.model import io
    from genomamba.model.config import GenoMambaConfig

    from genomamba.files import check_sha256sums

    directory = cad.resolve_source(src)
    check_sha256sums(directory)  # a directory written by convert --to caduceus has one
    source_config = cad.read_json(directory / "config.json")
    config = cad.config_from_caduceus(source_config, directory / "config.json")
    weights_path, state = cad.read_weights(directory)
    prefix = _prefix(state)
    names = cad.name_map(config, prefix)
    size = cad.padded_vocab_size(source_config, directory / "config.json")
    complement = cad.complement_list(source_config, size, directory / "config.json")
    shapes = cad.expected_shapes(config)
    rows = list(cad.CADUCEUS_ROW)
    others = [i for i in range(size) if i not in rows]

    ours, extra = {}, {}
    for key, name in names.items():
        shape = shapes[key]
        vocab = key in ("backbone.embedding.weight", "lm_head.weight")
        tensor = cad.checked(state, name, (size, shape[1]) if vocab else shape, weights_path)
        if vocab:
            extra["rows/" + name] = tensor[others].contiguous()
            tensor = tensor[rows]
        ours[key] = tensor.to(torch.float32)
    known = set(names.values())
    head = "lm_head.lm_head.weight"
    for copy, primary in cad.tied_copies(config, names).items():
        if copy in state and copy != head:
            if not torch.equal(state[copy], state[primary]):
                field = "tie_word_embeddings" if copy.startswith("lm_head") else "bidirectional_weight_tie"
                raise GenomambaError(f"{weights_path}: {copy} differs from {primary}, but {field} is true")
            known.add(copy)
    for name in cad.buffer_names(config, prefix):
        if name in state:
            if state[name].tolist() != complement:
                raise GenomambaError(f"{weights_path}: {name} {state[name].tolist()} differs from the "
                                     f"config's complement_map {complement}")
            known.add(name)
    if config.rc_mode == "ps" and head in state:
        # Caduceus-PS's tie_weights makes the head the embedding whatever tie_word_embeddings says,
        # so a different head in the file has no one meaning (the tensor loaded last wins)
        if not torch.equal(state[head], state[names["backbone.embedding.weight"]]):
            raise GenomambaError(f"{weights_path}: {head} differs from {names['backbone.embedding.weight']}; "
                                 "Caduceus-PS (rcps = true) always ties them")
        known.add(head)
    unexpected = sorted(set(state) - known)
    if unexpected:
        more = f" and {len(unexpected) - 3} more" if len(unexpected) > 3 else ""
        raise GenomambaError(f"{weights_path}: unexpected weight(s) {', '.join(unexpected[:3])}{more} "
                             f"for this config (rcps={source_config.get('rcps', False)}, "
                             f"n_layer={config.n_layer})")
    GenoMambaConfig.from_dict(config.to_dict())  # the config it writes is one it reads back
    provenance = {
        "format_version": FORMAT_VERSION,
        "source": cad.os_path(src),
        "source_directory": cad.os_path(directory),
        "source_weights": weights_path.name,
        "source_weights_sha256": cad.sha256_file(weights_path),
        "source_config": source_config,
        "source_keys": sorted(state),
        "source_dtypes": {k: str(v.dtype).removeprefix("torch.") for k, v in state.items()},
        "extra_rows": others,
        "converted_by": f"genomamba {__version__}",
        "command": command,
    }
    extra_bytes = save_safetensors(extra, metadata={"rows": json.dumps(others)})
    return io.save_checkpoint(out, ours, config.to_dict(), "masked_lm", {"rc_average": config.rc_mode == "ph"},
                              extra_files={cad.PROVENANCE_FILE: provenance, cad.EXTRA_FILE: extra_bytes})


def _recorded_source(directory, config):
    """(source config, extra rows, dtypes, keys) recorded by ``import_caduceus`` in
    ``directory``, when they describe this model's architecture; else None."""
    from safetensors.torch import load as load_safetensors

    if directory is None:
        return None
    prov_path, extra_path = Path(directory) / cad.PROVENANCE_FILE, Path(directory) / cad.EXTRA_FILE
    if not prov_path.is_file():
        return None
    prov = cad.read_json(prov_path)
    source_config = prov.get("source_config")
    try:
        same = cad.architecture(cad.config_from_caduceus(source_config, prov_path)) == cad.architecture(config)
    except GenomambaError:
        same = False
    if not same:
        return None
    try:
        extra = load_safetensors(extra_path.read_bytes())
    except FileNotFoundError:
        raise GenomambaError(f"{extra_path}: missing ({prov_path} records extra vocabulary rows)") from None
    except Exception as exc:
        raise GenomambaError(f"{extra_path}: cannot read ({str(exc)[:160]})") from None
    return source_config, extra, prov.get("source_dtypes") or {}, prov.get("source_keys")


def export_caduceus(model_path, out, command: str | None = None) -> Path:
    import torch
    from safetensors.torch import save as save_safetensors

    from genomamba import __version__
    from genomamba.files import SHA256SUMS, atomic_dir, sha256sums_text, write_bytes
    from genomamba.model.locate import locate_model

    source = locate_model(model_path, flag="convert --to caduceus")
    model = source.load("cpu")
    config, state = model.config, model.state_dict()
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise GenomambaError(f"{out}: exists and is not an empty directory; give a new --out")
    recorded = _recorded_source(source.directory, config)
    if recorded:
        cad_config, extra, dtypes, keys = recorded
    else:
        cad_config, extra, dtypes, keys = cad.config_to_caduceus(config), {}, {}, None
    size = cad.padded_vocab_size(cad_config, "config")
    complement = cad.complement_list(cad_config, size, "config")
    prefix = "" if keys and not any(k.startswith("caduceus.") for k in keys) else "caduceus."
    names = cad.name_map(config, prefix)
    rows = list(cad.CADUCEUS_ROW)
    others = [i for i in range(size) if i not in rows]
    tensors = {}
    for key, name in names.items():
        tensor = state[key].detach().to("cpu")
        if key in ("backbone.embedding.weight", "lm_head.weight"):
            full = torch.zeros(size, tensor.shape[1], dtype=tensor.dtype)
            full[rows] = tensor
            kept = extra.get("rows/" + name)
            if kept is not None and tuple(kept.shape) == (len(others), tensor.shape[1]):
                full[others] = kept.to(tensor.dtype)
            tensor = full
        tensors[name] = tensor
    for copy, primary in cad.tied_copies(config, names).items():
        if keys is None or copy in keys:  # written by default: not every transformers version re-ties them
            tensors[copy] = tensors[primary]
    for name in cad.buffer_names(config, prefix):
        if keys is None or name in keys:
            tensors[name] = torch.tensor(complement, dtype=torch.long)
    tensors = {k: (v.to(getattr(torch, dtypes[k])) if k in dtypes else v).contiguous().clone()
               for k, v in tensors.items()}
    weights = save_safetensors(tensors, metadata={"format": "pt"})
    provenance = {"format_version": FORMAT_VERSION, "source": cad.os_path(source.path),
                  "source_weights_sha256": source.sha256, "converted_by": f"genomamba {__version__}",
                  "command": command}
    files = {"model.safetensors": weights,
             **{name: (json.dumps(value, indent=2) + "\n").encode()
                for name, value in (("config.json", cad_config), ("genomamba.json", provenance))}}
    with atomic_dir(out, fsync=True) as tmp:
        for name, data in files.items():
            write_bytes(tmp / name, data, fsync=True)
        # safetensors has no checksum: `sha256sum -c SHA256SUMS` (and convert --from) checks the copy
        write_bytes(tmp / SHA256SUMS, sha256sums_text(files), fsync=True)
    return out
