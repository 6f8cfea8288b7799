"""``GenoMambaConfig``: every architecture and runtime option of the model.

Defaults are the Caduceus-PS 131k model (d_model 256, 16 BiMamba layers, d_state 16,
expand 2, d_conv 4, RC parameter sharing): about 7.7 M parameters.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from genomamba.data.vocab import VOCAB_SIZE
from genomamba.errors import GenomambaError

RC_MODES = ("ps", "ph", "none")
BIDIRECTIONAL_STRATEGIES = ("add", "mul")
SCAN_BACKENDS = ("auto", "triton", "torch")
NORMS = ("rms", "layer")

#: fields that change how the model runs, not what it computes; a checkpoint's values
#: may be overridden when loading it
RUNTIME_FIELDS = ("scan_backend", "gradient_checkpointing")

#: fields added after checkpoint format 1 was fixed, with the value that reproduces what a
#: checkpoint written before them computes; a config.json without them gets these values
LATER_FIELDS = {"bidirectional_weight_tie": True, "norm": "rms", "rcps_strand_swap": False}


@dataclass
class GenoMambaConfig:
    """Model configuration.

    rc_mode:
        ``"ps"``: RC parameter sharing (Caduceus-PS): both strands go through the same
        weights and the LM head combines them, so the model is exactly RC-equivariant
        (hidden width 2 * d_model). ``"ph"``: no sharing; trained with RC augmentation,
        and the heads average the predictions of both strands at inference
        (Caduceus-Ph, post-hoc conjoining). ``"none"``: neither.
    bidirectional:
        BiMamba (forward and reverse scans, tied in/out projections) or plain Mamba.
    bidirectional_strategy:
        How BiMamba combines its directions: ``"add"`` or element-wise ``"mul"``.
    dt_rank:
        ``"auto"`` is ceil(d_model / 16).
    scan_backend:
        ``genomamba.ops`` backend for the selective scan: ``"auto"`` (Triton on GPU,
        PyTorch on CPU), ``"triton"`` or ``"torch"``. Read at every forward.
    gradient_checkpointing:
        Recompute each block in the backward pass (``torch.utils.checkpoint``) while
        training. Read at every forward.
    bidirectional_weight_tie:
        BiMamba's directions share in_proj and out_proj (the default); false gives the
        reverse direction its own (``rev_in_proj``, ``rev_out_proj``).
    norm:
        ``"rms"`` (RMSNorm, weight only) or ``"layer"`` (LayerNorm, weight and bias).
    rcps_strand_swap:
        Caduceus-PS's fused-add-norm block order (its checkpoints saved with
        ``fused_add_norm: true``, as released): before every block the two strands
        trade places and are reversed in length and channels
        (``genomamba.model.rcps.swap_strands``). A different function of the same weights
        from the default order; only with rc_mode "ps".
    """

    d_model: int = 256
    n_layer: int = 16
    d_state: int = 16
    expand: int = 2
    d_conv: int = 4
    dt_rank: int | str = "auto"
    dt_min: float = 0.001
    dt_max: float = 0.1
    dt_init_floor: float = 1e-4
    dt_scale: float = 1.0
    conv_bias: bool = True
    vocab_size: int = VOCAB_SIZE
    rc_mode: str = "ps"
    bidirectional: bool = True
    bidirectional_strategy: str = "add"
    norm_epsilon: float = 1e-5
    residual_in_fp32: bool = True
    tie_embeddings: bool = True
    initializer_range: float = 0.02
    rescale_prenorm_residual: bool = True
    scan_backend: str = "auto"
    gradient_checkpointing: bool = False
    bidirectional_weight_tie: bool = True
    norm: str = "rms"
    rcps_strand_swap: bool = False

    def __post_init__(self):
        for name in ("d_model", "n_layer", "d_state", "expand", "d_conv"):
            _check_int(name, getattr(self, name), minimum=1)
        if self.dt_rank != "auto":
            _check_int("dt_rank", self.dt_rank, minimum=1)
        for name in ("dt_min", "dt_max", "dt_init_floor", "dt_scale", "norm_epsilon", "initializer_range"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise GenomambaError(f"config: {name} must be a positive number, got {value!r}")
        if self.dt_min > self.dt_max:
            raise GenomambaError(f"config: dt_min ({self.dt_min}) must not exceed dt_max ({self.dt_max})")
        for name in ("conv_bias", "bidirectional", "residual_in_fp32", "tie_embeddings",
                     "rescale_prenorm_residual", "gradient_checkpointing", "bidirectional_weight_tie",
                     "rcps_strand_swap"):
            if not isinstance(getattr(self, name), bool):
                raise GenomambaError(f"config: {name} must be true or false, got {getattr(self, name)!r}")
        if self.vocab_size != VOCAB_SIZE:
            raise GenomambaError(
                f"config: vocab_size must be {VOCAB_SIZE} (the fixed genomamba vocabulary), "
                f"got {self.vocab_size!r}")
        _check_choice("rc_mode", self.rc_mode, RC_MODES)
        _check_choice("bidirectional_strategy", self.bidirectional_strategy, BIDIRECTIONAL_STRATEGIES)
        _check_choice("scan_backend", self.scan_backend, SCAN_BACKENDS)
        _check_choice("norm", self.norm, NORMS)
        if self.rcps_strand_swap and self.rc_mode != "ps":
            raise GenomambaError(f"config: rcps_strand_swap needs rc_mode ps, got rc_mode {self.rc_mode!r}")

    @property
    def d_inner(self) -> int:
        return self.expand * self.d_model

    @property
    def dt_rank_value(self) -> int:
        return math.ceil(self.d_model / 16) if self.dt_rank == "auto" else int(self.dt_rank)

    @property
    def hidden_size(self) -> int:
        """Width of the backbone's output features: 2 * d_model with RC parameter sharing."""
        return 2 * self.d_model if self.rc_mode == "ps" else self.d_model

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict, source: str = "config") -> "GenoMambaConfig":
        """Build from a dict that names every field, no more and no fewer (a field of
        ``LATER_FIELDS`` may be absent: it gets the value older checkpoints computed with)."""
        if not isinstance(values, dict):
            raise GenomambaError(f"{source}: expected a JSON object of config fields, got {type(values).__name__}")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - names)
        missing = sorted(names - set(values) - set(LATER_FIELDS))
        if unknown:
            raise GenomambaError(f"{source}: unknown config field(s) {', '.join(unknown)}")
        if missing:
            raise GenomambaError(f"{source}: missing config field(s) {', '.join(missing)}")
        try:
            return cls(**{**LATER_FIELDS, **values})
        except GenomambaError as exc:
            raise GenomambaError(f"{source}: {exc}") from None


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise GenomambaError(f"config: {name} must be an integer >= {minimum}, got {value!r}")


def _check_choice(name, value, choices):
    if value not in choices:
        raise GenomambaError(f"config: {name} must be one of {', '.join(choices)}, got {value!r}")
