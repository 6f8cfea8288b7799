"""Caduceus checkpoints (its Hugging Face ``save_pretrained`` layout) <-> genomamba models.

The mapping, field by field and name by name, is documented in docs/convert.md:

- config: ``rcps`` -> rc_mode "ps"/"ph"; ``fused_add_norm`` with ``rcps`` -> rcps_strand_swap
  (the fused branch's strand order, see ``genomamba.model.rcps``); ``rms_norm`` -> norm;
  ``bidirectional*``, ``residual_in_fp32``, ``norm_epsilon``, ``tie_word_embeddings`` and
  ``ssm_cfg`` -> the fields of the same meaning. A value genomamba cannot represent is an
  error naming the field.
- weights: ``caduceus.backbone.layers.i.mixer[.submodule].mamba_fwd.X`` ->
  ``backbone.layers.i.mixer.{in_proj,out_proj,fwd.X}`` (``mamba_rev`` -> ``rev``), norms
  ``layers.i.norm[.submodule].weight``, ``norm_f[.submodule].weight``.
- vocabulary: Caduceus ids [CLS] 0 [SEP] 1 [BOS] 2 [MASK] 3 [PAD] 4 [RESERVED] 5 [UNK] 6
  A 7 C 8 G 9 T 10 N 11, padded to a multiple of ``pad_vocab_size_multiple``. Our rows
  A C G T N [PAD] [MASK] are Caduceus rows 7 8 9 10 11 4 3 (same vectors, so the same
  logits); the other rows go to ``caduceus_extra.safetensors`` so that the export puts
  them back bit for bit (a model without that file exports them as zeros).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

from genomamba.errors import GenomambaError

CADUCEUS_TOKENS = ("[CLS]", "[SEP]", "[BOS]", "[MASK]", "[PAD]", "[RESERVED]", "[UNK]", "A", "C", "G", "T", "N")
#: genomamba token id (A C G T N [PAD] [MASK]) -> Caduceus token id
CADUCEUS_ROW = (7, 8, 9, 10, 11, 4, 3)
#: Caduceus's complement map over its 12 ids (the padding rows map to themselves)
CADUCEUS_COMPLEMENT = {**{i: i for i in range(12)}, 7: 10, 8: 9, 9: 8, 10: 7}
PROVENANCE_FILE = "caduceus.json"
EXTRA_FILE = "caduceus_extra.safetensors"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
ARCHITECTURES = ("CaduceusForMaskedLM", "Caduceus")
AUTO_MAP = {
    "AutoConfig": "configuration_caduceus.CaduceusConfig",
    "AutoModel": "modeling_caduceus.Caduceus",
    "AutoModelForMaskedLM": "modeling_caduceus.CaduceusForMaskedLM",
    "AutoModelForSequenceClassification": "modeling_caduceus.CaduceusForSequenceClassification",
}
SSM_FIELDS = {"d_state": "d_state", "d_conv": "d_conv", "expand": "expand", "dt_rank": "dt_rank",
              "dt_min": "dt_min", "dt_max": "dt_max", "dt_scale": "dt_scale", "dt_init_floor": "dt_init_floor",
              "conv_bias": "conv_bias"}
#: Caduceus config fields read here; every other field must be one of Hugging Face's generic ones
CADUCEUS_FIELDS = {"d_model", "n_layer", "vocab_size", "ssm_cfg", "rms_norm", "residual_in_fp32", "fused_add_norm",
                   "pad_vocab_size_multiple", "norm_epsilon", "initializer_cfg", "bidirectional",
                   "bidirectional_strategy", "bidirectional_weight_tie", "rcps", "complement_map"}
HF_GENERIC_FIELDS = {
    "_attn_implementation_autoset", "_name_or_path", "_commit_hash", "add_cross_attention", "architectures",
    "auto_map", "bad_words_ids", "begin_suppress_tokens", "bos_token_id", "chunk_size_feed_forward",
    "cross_attention_hidden_size", "decoder_start_token_id", "diversity_penalty", "do_sample", "early_stopping",
    "encoder_no_repeat_ngram_size", "eos_token_id", "exponential_decay_length_penalty", "finetuning_task",
    "id2label", "is_decoder", "is_encoder_decoder", "label2id", "length_penalty", "max_length", "min_length",
    "model_type", "no_repeat_ngram_size", "num_beam_groups", "num_beams", "num_return_sequences",
    "output_attentions", "output_hidden_states", "output_scores", "pad_token_id", "prefix", "problem_type",
    "pruned_heads", "remove_invalid_values", "repetition_penalty", "return_dict", "return_dict_in_generate",
    "sep_token_id", "suppress_tokens", "task_specific_params", "temperature", "tf_legacy_loss",
    "tie_encoder_decoder", "tie_word_embeddings", "tokenizer_class", "top_k", "top_p", "torch_dtype",
    "torchscript", "transformers_version", "typical_p", "use_bfloat16",
}


# ---- config -------------------------------------------------------------------------------

def _field(cfg: dict, name: str, kind, default, source):
    value = cfg.get(name, default)
    ok = isinstance(value, bool) if kind is bool else (
        isinstance(value, kind) and not isinstance(value, bool))
    if not ok:
        raise GenomambaError(f"{source}: {name} = {json.dumps(value)} is not supported "
                             f"(expected {'true or false' if kind is bool else kind.__name__})")
    return value


def padded_vocab_size(cfg: dict, source) -> int:
    size = _field(cfg, "vocab_size", int, None, source)
    multiple = _field(cfg, "pad_vocab_size_multiple", int, 8, source)
    if multiple < 1:
        raise GenomambaError(f"{source}: pad_vocab_size_multiple = {multiple} is not supported (must be >= 1)")
    padded = math.ceil(size / multiple) * multiple
    if padded < len(CADUCEUS_TOKENS):
        raise GenomambaError(f"{source}: vocab_size = {size} is not supported: the Caduceus character "
                             f"vocabulary has {len(CADUCEUS_TOKENS)} tokens ({' '.join(CADUCEUS_TOKENS)})")
    return padded


def complement_list(cfg: dict, size: int, source) -> list[int]:
    """The config's complement map as a list over the ``size`` padded ids (Caduceus pads
    it with identities), checked to complement A/C/G/T as genomamba does."""
    given = cfg.get("complement_map")
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise GenomambaError(f"{source}: complement_map must be a JSON object of id -> id")
    try:
        mapping = {int(k): v for k, v in given.items()}
    except ValueError:
        raise GenomambaError(f"{source}: complement_map keys must be token ids, got {sorted(given)[:5]}") from None
    out = [mapping.get(i, i) for i in range(size)]
    for i in (3, 4, 7, 8, 9, 10, 11):
        if out[i] != CADUCEUS_COMPLEMENT[i]:
            raise GenomambaError(
                f"{source}: complement_map[{i}] ({CADUCEUS_TOKENS[i]}) = {json.dumps(out[i])} is not supported: "
                f"genomamba complements {CADUCEUS_TOKENS[i]} to {CADUCEUS_TOKENS[CADUCEUS_COMPLEMENT[i]]} "
                f"(id {CADUCEUS_COMPLEMENT[i]})")
    if any(not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < size for v in out):
        raise GenomambaError(f"{source}: complement_map values must be token ids below {size}")
    return out


def config_from_caduceus(cfg: dict, source):
    """A Caduceus config.json (dict) -> ``GenoMambaConfig``; anything it cannot represent
    exactly is a ``GenomambaError`` naming the field and its value."""
    from genomamba.model.config import GenoMambaConfig

    if not isinstance(cfg, dict):
        raise GenomambaError(f"{source}: expected a JSON object")
    if cfg.get("model_type", "caduceus") != "caduceus":
        raise GenomambaError(f"{source}: model_type = {json.dumps(cfg.get('model_type'))} is not supported "
                             "(a Caduceus config.json has model_type \"caduceus\")")
    unknown = sorted(set(cfg) - CADUCEUS_FIELDS - HF_GENERIC_FIELDS)
    if unknown:
        raise GenomambaError(f"{source}: {unknown[0]} = {json.dumps(cfg[unknown[0]])[:80]} is not supported "
                             f"(unknown Caduceus config field{'s ' + ', '.join(unknown) if len(unknown) > 1 else ''})")
    arch = cfg.get("architectures") or ["CaduceusForMaskedLM"]
    if not isinstance(arch, list) or any(a not in ARCHITECTURES for a in arch):
        raise GenomambaError(f"{source}: architectures = {json.dumps(arch)} is not supported "
                             f"(converts {' and '.join(ARCHITECTURES)})")
    rcps = _field(cfg, "rcps", bool, False, source)
    strategy = cfg.get("bidirectional_strategy", "add")
    if strategy not in ("add", "ew_multiply", None):
        raise GenomambaError(f"{source}: bidirectional_strategy = {json.dumps(strategy)} is not supported "
                             "(add or ew_multiply)")
    ssm = cfg.get("ssm_cfg") or {}
    if not isinstance(ssm, dict):
        raise GenomambaError(f"{source}: ssm_cfg = {json.dumps(ssm)} is not supported (expected an object)")
    for key, value in ssm.items():
        if key not in SSM_FIELDS and key not in ("dt_init", "use_fast_path", "bias", "layer_idx"):
            raise GenomambaError(f"{source}: ssm_cfg.{key} = {json.dumps(value)} is not supported "
                                 "(unknown Mamba setting)")
    if ssm.get("bias", False) is not False:
        raise GenomambaError(f"{source}: ssm_cfg.bias = {json.dumps(ssm['bias'])} is not supported "
                             "(genomamba's in/out projections have no bias)")
    if ssm.get("dt_init", "random") not in ("random", "constant"):
        raise GenomambaError(f"{source}: ssm_cfg.dt_init = {json.dumps(ssm['dt_init'])} is not supported")
    init = cfg.get("initializer_cfg") or {}
    if not isinstance(init, dict):
        raise GenomambaError(f"{source}: initializer_cfg = {json.dumps(init)} is not supported (expected an object)")
    padded_vocab_size(cfg, source)
    complement_list(cfg, padded_vocab_size(cfg, source), source)
    values = {
        "d_model": _field(cfg, "d_model", int, None, source),
        "n_layer": _field(cfg, "n_layer", int, None, source),
        "rc_mode": "ps" if rcps else "ph",
        "bidirectional": _field(cfg, "bidirectional", bool, True, source),
        "bidirectional_strategy": "mul" if strategy == "ew_multiply" else "add",
        "bidirectional_weight_tie": _field(cfg, "bidirectional_weight_tie", bool, True, source),
        "norm": "rms" if _field(cfg, "rms_norm", bool, True, source) else "layer",
        "residual_in_fp32": _field(cfg, "residual_in_fp32", bool, True, source),
        "rcps_strand_swap": rcps and _field(cfg, "fused_add_norm", bool, True, source),
        # Caduceus's RCPS LM head is always the embedding (its tie_weights ignores the flag)
        "tie_embeddings": rcps or _field(cfg, "tie_word_embeddings", bool, True, source),
        "norm_epsilon": cfg.get("norm_epsilon", 1e-5),
        **{ours: ssm[theirs] for theirs, ours in SSM_FIELDS.items() if theirs in ssm},
        **{k: init[k] for k in ("initializer_range", "rescale_prenorm_residual") if k in init},
    }
    if not values["bidirectional"]:
        values["bidirectional_weight_tie"] = True  # no reverse direction to tie
    try:
        return GenoMambaConfig(**values)
    except GenomambaError as exc:
        raise GenomambaError(f"{source}: {str(exc).removeprefix('config: ')}") from None


def config_to_caduceus(config, window: int | None = None) -> dict:
    """``GenoMambaConfig`` -> a Caduceus config.json, as its ``save_pretrained`` writes one."""
    size = 16
    return {
        "architectures": ["CaduceusForMaskedLM"],
        "auto_map": dict(AUTO_MAP),
        "bidirectional": config.bidirectional,
        "bidirectional_strategy": "ew_multiply" if config.bidirectional_strategy == "mul" else "add",
        "bidirectional_weight_tie": config.bidirectional_weight_tie,
        "complement_map": {str(i): CADUCEUS_COMPLEMENT.get(i, i) for i in range(size)},
        "d_model": config.d_model,
        "fused_add_norm": config.rcps_strand_swap,
        "initializer_cfg": {"initializer_range": config.initializer_range, "n_residuals_per_layer": 1,
                            "rescale_prenorm_residual": config.rescale_prenorm_residual},
        "model_type": "caduceus",
        "n_layer": config.n_layer,
        "norm_epsilon": config.norm_epsilon,
        "pad_vocab_size_multiple": 8,
        "rcps": config.rc_mode == "ps",
        "residual_in_fp32": config.residual_in_fp32,
        "rms_norm": config.norm == "rms",
        "ssm_cfg": {"bias": False, "conv_bias": config.conv_bias, "d_conv": config.d_conv,
                    "d_state": config.d_state, "dt_init": "random", "dt_init_floor": config.dt_init_floor,
                    "dt_max": config.dt_max, "dt_min": config.dt_min, "dt_rank": config.dt_rank,
                    "dt_scale": config.dt_scale, "expand": config.expand, "use_fast_path": True},
        "tie_word_embeddings": config.tie_embeddings,
        "torch_dtype": "float32",
        "vocab_size": size,
    }


def architecture(config) -> dict:
    """The fields of a ``GenoMambaConfig`` that change what it computes."""
    from genomamba.model.config import RUNTIME_FIELDS

    return {k: v for k, v in config.to_dict().items() if k not in RUNTIME_FIELDS}


# ---- parameter names ----------------------------------------------------------------------

def name_map(config, prefix: str = "caduceus.") -> dict[str, str]:
    """genomamba state-dict key -> Caduceus key, for every genomamba weight of ``config``."""
    from genomamba.model import GenoMambaForMaskedLM

    ps = config.rc_mode == "ps"
    wrap = ".submodule" if ps else ""
    norm_wrap = ".submodule" if ps and not config.rcps_strand_swap else ""
    back = prefix + "backbone."
    out = {}
    for key in _meta_model(GenoMambaForMaskedLM, config).state_dict():
        parts = key.split(".")
        if key == "backbone.embedding.weight":
            name = back + "embeddings.word_embeddings" + (".embedding" if ps else "") + ".weight"
        elif key.startswith("backbone.norm_f."):
            name = back + "norm_f" + norm_wrap + "." + parts[-1]
        elif key == "lm_head.weight":
            name = "lm_head" + (".lm_head" if ps else "") + ".weight"
        elif parts[3] == "norm":
            name = f"{back}layers.{parts[2]}.norm{norm_wrap}.{parts[-1]}"
        else:  # backbone.layers.i.mixer.<...>
            mixer, rest = f"{back}layers.{parts[2]}.mixer{wrap}.", parts[4:]
            if rest[0] in ("in_proj", "out_proj"):
                name = mixer + "mamba_fwd." + ".".join(rest)
            elif rest[0] in ("rev_in_proj", "rev_out_proj"):
                name = mixer + "mamba_rev." + rest[0].removeprefix("rev_") + "." + rest[1]
            else:  # fwd.X, rev.X, ssm.X
                direction = "mamba_rev." if rest[0] == "rev" else "mamba_fwd."
                name = mixer + direction + ".".join(rest[1:])
        out[key] = name
    return out


def tied_copies(config, names: dict[str, str]) -> dict[str, str]:
    """Caduceus keys that hold a tied copy of another weight -> that weight's Caduceus key
    (Hugging Face's ``save_pretrained`` keeps only the first of them)."""
    out = {}
    if config.tie_embeddings:
        out["lm_head" + (".lm_head" if config.rc_mode == "ps" else "") + ".weight"] = names["backbone.embedding.weight"]
    if config.bidirectional and config.bidirectional_weight_tie:
        for key, name in names.items():
            if key.endswith(("mixer.in_proj.weight", "mixer.out_proj.weight")):
                out[name.replace(".mamba_fwd.", ".mamba_rev.")] = name
    return out


def buffer_names(config, prefix: str = "caduceus.") -> list[str]:
    """Caduceus's complement-map buffers (RCPS only)."""
    if config.rc_mode != "ps":
        return []
    return [prefix + "backbone.embeddings.word_embeddings.complement_map", "lm_head.complement_map"]


def _meta_model(cls, config):
    import torch

    with torch.device("meta"):
        return cls(config)


def expected_shapes(config) -> dict[str, tuple]:
    from genomamba.model import GenoMambaForMaskedLM

    return {k: tuple(v.shape) for k, v in _meta_model(GenoMambaForMaskedLM, config).state_dict().items()}


# ---- files --------------------------------------------------------------------------------

def sha256_file(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve_source(src) -> Path:
    """A Caduceus checkpoint directory, or a hub cache folder of one
    (``models--ORG--NAME``: its ``refs/main`` snapshot, or its only snapshot)."""
    path = Path(src)
    if not path.is_dir():
        raise GenomambaError(f"{path}: no such directory (give a Caduceus checkpoint directory: "
                             "config.json + model.safetensors or pytorch_model.bin)")
    if (path / "config.json").is_file():
        return path
    snapshots = path / "snapshots"
    if snapshots.is_dir():
        ref = path / "refs" / "main"
        if ref.is_file() and (snapshots / ref.read_text().strip()).is_dir():
            return snapshots / ref.read_text().strip()
        found = sorted(p for p in snapshots.iterdir() if p.is_dir())
        if len(found) == 1:
            return found[0]
        raise GenomambaError(f"{path}: a hub cache folder with {len(found)} snapshots and no refs/main; "
                             "give one of its snapshots/<revision> folders")
    raise GenomambaError(f"{path}: no config.json (not a Caduceus checkpoint directory)")


def read_weights(directory: Path):
    """(path, state dict) of a checkpoint's weight file, read without running any code."""
    import torch
    from safetensors.torch import load as load_safetensors

    for name in WEIGHT_FILES:
        path = directory / name
        if not path.is_file():
            continue
        try:
            if name.endswith(".safetensors"):
                state = load_safetensors(path.read_bytes())
            else:
                state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # truncated file, bad header, a pickle that needs code
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise GenomambaError(f"{path}: cannot read weights ({reason[:160]})") from None
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise GenomambaError(f"{path}: not a state dict of tensors")
        return path, state
    if (directory / "model.safetensors.index.json").is_file():
        raise GenomambaError(f"{directory}: sharded weights (model.safetensors.index.json) are not supported; "
                             "re-save the model with a single model.safetensors")
    raise GenomambaError(f"{directory}: missing weight file ({' or '.join(WEIGHT_FILES)})")


def read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text())
    except FileNotFoundError:
        raise GenomambaError(f"{path}: missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GenomambaError(f"{path}: not valid JSON ({getattr(exc, 'msg', exc)})") from None
    if not isinstance(value, dict):
        raise GenomambaError(f"{path}: expected a JSON object")
    return value


def checked(state: dict, key: str, shape: tuple, where) -> "object":
    tensor = state.get(key)
    if tensor is None:
        raise GenomambaError(f"{where}: missing weight {key}")
    if tuple(tensor.shape) != tuple(shape):
        raise GenomambaError(f"{where}: {key} has shape {tuple(tensor.shape)}, the config needs {tuple(shape)}")
    if not tensor.dtype.is_floating_point:
        raise GenomambaError(f"{where}: {key} has dtype {tensor.dtype}, expected floating point")
    return tensor


def os_path(path) -> str:
    return os.path.abspath(os.fspath(path))
