"""Backbone and task heads.

``GenoMambaBackbone``: token embedding, ``n_layer`` pre-norm residual blocks
(RMSNorm -> BiMamba or MambaMixer), final RMSNorm. With ``rc_mode="ps"`` it runs the
shared weights on both strands as one batch (see ``genomamba.model.rcps``).

Heads (both have ``embed``, ``save_pretrained`` and ``from_pretrained``):

- ``GenoMambaForMaskedLM(config)``: ``forward(input_ids) -> logits (batch, L, VOCAB_SIZE)``,
  LM head tied to the embedding; RC-equivariant in "ps" mode.
- ``GenoMambaForSequenceClassification(config, num_labels, pooling)``:
  ``forward(input_ids) -> logits (batch, num_labels)``; RC-invariant in "ps" mode, and in
  "ph" mode while it averages both strands (``rc_average``).
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from genomamba.errors import GenomambaError
from genomamba.model import io, rcps
from genomamba.model.config import RUNTIME_FIELDS, GenoMambaConfig
from genomamba.model.mixer import BiMamba, MambaMixer, at_least_fp32
from genomamba.model.pooling import POOLINGS, Pooling, feature_size
from genomamba.ops.rmsnorm import add_rms_norm, rms_norm


class RMSNorm(nn.Module):
    """RMSNorm computed in at least float32; returns the weight's dtype. ``backend``
    (the model's scan_backend) picks the Triton kernels or the PyTorch formula."""

    def __init__(self, dim: int, eps: float = 1e-5, config: GenoMambaConfig | None = None):
        super().__init__()
        self.eps = eps
        self.config = config
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return rms_norm(x, self.weight, self.eps, self._backend())

    def add(self, x: torch.Tensor, residual: torch.Tensor, out_dtype: torch.dtype | None = None):
        """(x + residual, this norm of it in ``out_dtype``, default the weight's): one kernel
        for inference on the Triton backend (``add_rms_norm``)."""
        return add_rms_norm(x, residual, self.weight, self.eps, self._backend(), out_dtype)

    def _backend(self) -> str:
        return "torch" if self.config is None else self.config.scan_backend


class LayerNorm(nn.Module):
    """LayerNorm (weight and bias) computed in float32; returns the weight's dtype
    (config ``norm: layer``, for Caduceus checkpoints with ``rms_norm: false``)."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight
        out = F.layer_norm(at_least_fp32(x), w.shape, at_least_fp32(w), at_least_fp32(self.bias), self.eps)
        return out.to(w.dtype)


def make_norm(config: GenoMambaConfig) -> nn.Module:
    if config.norm == "layer":
        return LayerNorm(config.d_model, eps=config.norm_epsilon)
    return RMSNorm(config.d_model, eps=config.norm_epsilon, config=config)


class Block(nn.Module):
    """Pre-norm residual block: residual += hidden; hidden = mixer(norm(residual))."""

    def __init__(self, config: GenoMambaConfig):
        super().__init__()
        self.residual_in_fp32 = config.residual_in_fp32
        self.norm = make_norm(config)
        self.mixer = BiMamba(config) if config.bidirectional else MambaMixer(config)

    def forward(self, hidden: torch.Tensor, residual: torch.Tensor | None):
        residual, normed = add_norm(self.norm, hidden, residual, autocast_dtype(hidden))
        hidden = self.mixer(normed)
        if self.residual_in_fp32:
            residual = at_least_fp32(residual)
        return hidden, residual


def autocast_dtype(x: torch.Tensor) -> torch.dtype | None:
    """The autocast dtype where autocast is on for x's device, else None."""
    kind = x.device.type
    return torch.get_autocast_dtype(kind) if torch.is_autocast_enabled(kind) else None


def add_norm(norm: nn.Module, hidden: torch.Tensor, residual: torch.Tensor | None,
             out_dtype: torch.dtype | None = None):
    """(residual + hidden, norm of it): the pre-norm block's first step. With ``out_dtype``
    (the autocast dtype, which the mixer's first matmul casts its input to anyway) the
    normalised stream comes in that dtype; an RMSNorm takes one kernel for inference."""
    if residual is not None and isinstance(norm, RMSNorm):
        return norm.add(hidden, residual, out_dtype)
    residual = hidden if residual is None else hidden + residual
    normed = norm(residual)
    return residual, normed.to(out_dtype or normed.dtype)


class GenoMambaBackbone(nn.Module):
    def __init__(self, config: GenoMambaConfig):
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.d_model)
        self.layers = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.norm_f = make_norm(config)
        self.register_buffer("complement", rcps.complement_index(), persistent=False)

    def run(self, input_ids: torch.Tensor) -> torch.Tensor:
        """The single-strand network: (n, L) token ids -> (n, L, d_model). With
        ``rcps_strand_swap`` the batch must be [sequences; reverse complements]."""
        hidden, residual = self._stream_parts(input_ids)
        return add_norm(self.norm_f, hidden, residual)[1]

    def stream(self, input_ids: torch.Tensor, n_blocks: int | None = None) -> torch.Tensor:
        """The residual stream (embedding plus block outputs) after the first ``n_blocks``
        blocks (default all), before the final norm: (n, L, d_model), strand-aligned."""
        hidden, residual = self._stream_parts(input_ids, n_blocks)
        return hidden if residual is None else hidden + residual

    def _stream_parts(self, input_ids: torch.Tensor, n_blocks: int | None = None):
        """The residual stream as (last block's output, residual before it), or (stream, None)."""
        blocks = self.layers if n_blocks is None else self.layers[:n_blocks]
        swap = rcps.swap_strands if self.config.rcps_strand_swap else _same
        if swap is not _same and input_ids.shape[0] % 2:
            raise ValueError("rcps_strand_swap: run the backbone on [sequences; reverse complements]")
        hidden, residual = self.embedding(input_ids), None
        if self.config.gradient_checkpointing and self.training and torch.is_grad_enabled():
            # one tensor crosses each checkpoint: the residual stream after the block's sum
            stream = hidden
            for layer in blocks:
                stream = checkpoint(_stream_step, layer, swap(stream), use_reentrant=False)
            return stream, None
        for layer in blocks:
            if swap is not _same:  # before every block (rcps.swap_strands)
                hidden, residual = swap(hidden), None if residual is None else swap(residual)
            hidden, residual = layer(hidden, residual)
        return hidden, residual

    def strands(self, input_ids: torch.Tensor, both: bool):
        """Run on the sequences, or with ``both`` on [sequences; reverse complements] as one
        batch. Returns (hidden (R * batch, L, d_model), the token ids it ran on)."""
        ids = rcps.both_strands(input_ids, self.complement) if both else input_ids
        return self.run(ids), ids

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Features (batch, L, hidden_size): with "ps", the RC-equivariant Caduceus layout
        [h(x), flip(h(rc x))] of width 2 * d_model; otherwise h(x), width d_model."""
        input_ids = as_token_ids(input_ids)
        if self.config.rc_mode == "ps":
            return rcps.to_channel_layout(self.strands(input_ids, both=True)[0])
        return self.run(input_ids)

    forward = embed


def _same(x: torch.Tensor) -> torch.Tensor:
    return x


def _stream_step(layer: Block, stream: torch.Tensor) -> torch.Tensor:
    """stream + mixer(norm(stream)): a block with its output summed into the residual
    (the same operations as the unsplit loop, which adds them in the next block)."""
    hidden, residual = layer(stream, None)
    return hidden + residual


def as_token_ids(input_ids) -> torch.Tensor:
    if not torch.is_tensor(input_ids) or input_ids.dim() != 2 or input_ids.dtype.is_floating_point:
        shape = tuple(input_ids.shape) if torch.is_tensor(input_ids) else type(input_ids).__name__
        raise ValueError(f"input_ids must be an integer tensor (batch, L), got {shape}")
    if input_ids.shape[1] == 0:
        raise ValueError("input_ids must have at least one position")
    return input_ids.long()


@torch.no_grad()
def init_weights(model: nn.Module, config: GenoMambaConfig):
    """Mamba's init: zero Linear biases (not dt_proj's), embedding N(0, initializer_range),
    out_proj kaiming-uniform scaled by 1/sqrt(n_layer) (prenorm residual rescaling)."""
    for module in model.modules():
        if isinstance(module, nn.Linear) and module.bias is not None and not getattr(module.bias, "_no_reinit", False):
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=config.initializer_range)
        if config.rescale_prenorm_residual and isinstance(module, (BiMamba, MambaMixer)):
            for out_proj in (module.out_proj, getattr(module, "rev_out_proj", None)):
                if out_proj is not None:
                    nn.init.kaiming_uniform_(out_proj.weight, a=5 ** 0.5)
                    out_proj.weight /= config.n_layer ** 0.5


class _GenoMambaModel(nn.Module):
    task = ""

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Backbone features (batch, L, config.hidden_size), for feature extraction."""
        return self.backbone.embed(input_ids)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def set_scan_backend(self, backend: str):
        """Selective-scan backend for every layer ("auto", "triton", "torch")."""
        GenoMambaConfig(**{**self.config.to_dict(), "scan_backend": backend})  # validates
        self.config.scan_backend = backend
        return self

    def _use_rc_average(self, rc_average):
        if self.config.rc_mode == "ps":
            return False  # already RC-equivariant by construction
        if rc_average is not None:
            return bool(rc_average)
        return self.rc_average and not self.training

    def save_pretrained(self, directory, training: dict | None = None, extra_files: dict | None = None):
        """Write weights, config and vocabulary to ``directory`` (atomically); ``training``
        and ``extra_files`` as for ``genomamba.model.io.save_checkpoint``."""
        return io.save_checkpoint(directory, self.state_dict(), self.config.to_dict(), self.task, self._head(),
                                  training=training, extra_files=extra_files)

    def _head(self) -> dict:
        raise NotImplementedError

    @staticmethod
    def _read(directory, overrides):
        bad = sorted(set(overrides) - set(RUNTIME_FIELDS))
        if bad:
            raise TypeError(f"from_pretrained: unexpected argument(s) {', '.join(bad)} "
                            f"(only {', '.join(RUNTIME_FIELDS)} may override the saved config)")
        values, task, head, state = io.load_checkpoint(directory)
        if isinstance(values, dict):
            values = {**values, **overrides}
        config = GenoMambaConfig.from_dict(values, source=f"{directory}/{io.CONFIG_FILE}")
        if task not in (GenoMambaForMaskedLM.task, GenoMambaForSequenceClassification.task):
            raise GenomambaError(f"{directory}/{io.CONFIG_FILE}: unknown task {task!r}")
        if not isinstance(head, dict):
            raise GenomambaError(f"{directory}/{io.CONFIG_FILE}: 'head' must be a JSON object")
        return config, task, head, state


class GenoMambaForMaskedLM(_GenoMambaModel):
    """Masked-LM model. ``rc_average`` (default: on for rc_mode "ph") averages the logits
    of both strands, rc-mapped back, at inference (``model.eval()``); the ``rc_average``
    argument of ``forward`` forces it on or off in any mode."""

    task = "masked_lm"

    def __init__(self, config: GenoMambaConfig, rc_average: bool | None = None):
        super().__init__()
        self.config = config
        self.backbone = GenoMambaBackbone(config)
        self.lm_head = None if config.tie_embeddings else nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.rc_average = (config.rc_mode == "ph") if rc_average is None else bool(rc_average)
        init_weights(self, config)

    @property
    def lm_weight(self) -> torch.Tensor:
        return self.backbone.embedding.weight if self.lm_head is None else self.lm_head.weight

    def forward(self, input_ids: torch.Tensor, rc_average: bool | None = None) -> torch.Tensor:
        """(batch, L) token ids -> logits (batch, L, VOCAB_SIZE), at least float32."""
        input_ids = as_token_ids(input_ids)
        complement = self.backbone.complement
        if self.config.rc_mode == "ps":
            hidden, _ = self.backbone.strands(input_ids, both=True)
            logits = rcps.combine_strand_logits(F.linear(hidden, self.lm_weight), complement)
        elif self._use_rc_average(rc_average):
            hidden, _ = self.backbone.strands(input_ids, both=True)
            logits = rcps.combine_strand_logits(F.linear(hidden, self.lm_weight), complement, scale=0.5)
        else:
            logits = F.linear(self.backbone.run(input_ids), self.lm_weight)
        return at_least_fp32(logits)

    def logits_at(self, input_ids: torch.Tensor, position, rc_average: bool | None = None) -> torch.Tensor:
        """Logits (batch, VOCAB_SIZE) at one position per row (``position``: an int, or a
        (batch,) tensor of positions): ``forward(input_ids)[rows, position]`` without the LM
        head's work at the other positions, and with the head in float32 even under bf16
        autocast (the backbone runs in the autocast dtype), so scores taken from them are
        not bf16-quantised. A (batch, K) tensor of positions gives (batch, K, VOCAB_SIZE):
        K positions of each row from one forward pass."""
        input_ids = as_token_ids(input_ids)
        n, length = input_ids.shape
        ps = self.config.rc_mode == "ps"
        both = ps or self._use_rc_average(rc_average)
        hidden, _ = self.backbone.strands(input_ids, both=both)
        weight = self.lm_weight.float()
        rows = torch.arange(n, device=hidden.device)
        if torch.is_tensor(position) and position.dim() == 2:
            rows = rows[:, None]
        with torch.autocast(hidden.device.type, enabled=False):
            fwd = F.linear(hidden[rows, position].float(), weight)
            if not both:
                return fwd
            # the reverse strand's position for this one, complemented (rcps.combine_strand_logits)
            rev = F.linear(hidden[n + rows, length - 1 - position].float(), weight)[..., self.backbone.complement]
            return fwd + rev if ps else 0.5 * (fwd + rev)

    def _head(self):
        return {"rc_average": self.rc_average}

    @classmethod
    def from_pretrained(cls, directory, rc_average: bool | None = None, **overrides):
        """Load a checkpoint directory (a masked-LM one, or the backbone of any other).
        ``overrides``: values for the runtime config fields (scan_backend,
        gradient_checkpointing)."""
        config, task, head, state = cls._read(directory, overrides)
        same = task == cls.task
        if rc_average is None and same:
            rc_average = head.get("rc_average")
        model = cls(config, rc_average=rc_average)
        fresh = io.load_state_into(model, state, directory, None if same else ("backbone.",))
        if fresh:
            warnings.warn(f"{directory}: {task} checkpoint has no masked-LM head; "
                          f"{', '.join(fresh)} newly initialised", stacklevel=2)
        return model


class GenoMambaForSequenceClassification(_GenoMambaModel):
    """Sequence classifier: backbone -> pooling over positions -> linear.

    pooling: "mean" or "max" over the non-[PAD] positions (all positions for a row that
    is only padding), "center" (position L // 2), "mean_center" or "attention" (see
    ``genomamba.model.pooling``). With rc_mode "ps" the logits are
    the mean of both strands' logits (Caduceus-PS), so they are RC-invariant; with
    ``rc_average`` (default on for "ph", at inference) the same averaging is applied to a
    model without parameter sharing.
    """

    task = "sequence_classification"

    def __init__(self, config: GenoMambaConfig, num_labels: int, pooling: str = "mean",
                 rc_average: bool | None = None):
        super().__init__()
        if isinstance(num_labels, bool) or not isinstance(num_labels, int) or num_labels < 1:
            raise GenomambaError(f"num_labels must be a positive integer, got {num_labels!r}")
        if pooling not in POOLINGS:
            raise GenomambaError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
        self.config = config
        self.num_labels = num_labels
        self.rc_average = (config.rc_mode == "ph") if rc_average is None else bool(rc_average)
        self.backbone = GenoMambaBackbone(config)
        self.pooler = Pooling(pooling, config.d_model)
        self.score = nn.Linear(feature_size(pooling, config.d_model), num_labels)
        init_weights(self, config)
        with torch.no_grad():
            nn.init.normal_(self.score.weight, std=config.initializer_range)

    @property
    def pooling(self) -> str:
        return self.pooler.kind

    @pooling.setter
    def pooling(self, kind: str) -> None:  # between poolings of one feature size, without weights
        self.pooler.kind = kind

    def pool(self, hidden: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
        """(n, L, d) features of the sequences ``input_ids`` (n, L) -> (n, score.in_features)."""
        return self.pooler(hidden, input_ids)

    def forward(self, input_ids: torch.Tensor, rc_average: bool | None = None) -> torch.Tensor:
        """(batch, L) token ids -> logits (batch, num_labels), at least float32."""
        input_ids = as_token_ids(input_ids)
        both = self.config.rc_mode == "ps" or self._use_rc_average(rc_average)
        hidden, ids = self.backbone.strands(input_ids, both=both)
        logits = self.score(self.pool(hidden, ids))
        if both:
            logits = logits.view(2, input_ids.shape[0], self.num_labels).mean(0)
        return at_least_fp32(logits)

    def _head(self):
        return {"num_labels": self.num_labels, "pooling": self.pooling, "rc_average": self.rc_average}

    @classmethod
    def from_pretrained(cls, directory, num_labels: int | None = None, pooling: str | None = None,
                        rc_average: bool | None = None, **overrides):
        """Load a classifier checkpoint, or build a classifier on the backbone of a masked-LM
        checkpoint (``num_labels`` required; new head). A classifier checkpoint loaded with a
        different ``num_labels`` keeps its backbone and gets a new head (with a warning)."""
        config, task, head, state = cls._read(directory, overrides)
        same = task == cls.task
        if same:
            saved_labels = head.get("num_labels")
            same = num_labels is None or num_labels == saved_labels
            num_labels = saved_labels if num_labels is None else num_labels
            pooling = head.get("pooling", "mean") if pooling is None else pooling
            rc_average = head.get("rc_average") if rc_average is None else rc_average
        if num_labels is None:
            raise GenomambaError(f"{directory}: a {task} checkpoint has no classifier head: pass num_labels")
        model = cls(config, num_labels=num_labels, pooling=pooling or "mean", rc_average=rc_average)
        fresh = io.load_state_into(model, state, directory, None if same else ("backbone.",))
        if fresh and task == cls.task:
            warnings.warn(f"{directory}: classifier head has {head.get('num_labels')} labels, "
                          f"asked for {num_labels}: new head", stacklevel=2)
        return model
