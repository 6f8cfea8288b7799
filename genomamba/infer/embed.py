"""``genomamba embed``: a pretrained model's features of regions or sequences, to HDF5.

For each region the backbone runs on both strands, [x; rc(x)] as one batch (whatever the
model's ``rc_mode``), and the two strands' features are averaged:

- pooled (``mean``, ``max``, ``center`` = position L // 2 of each strand): one vector of
  ``d_model`` per region, ``(pool(h(x)) + pool(h(rc x))) / 2``, the features a fine-tuning
  probe sees; for a "ps" model it is exactly the same for a region and its reverse
  complement (a BED interval on ``+`` or ``-``);
- ``none``: one vector per position, ``(h(x)_t + h(rc x)_(L-1-t)) / 2``, in the order of
  the sequence as read (a ``-`` interval's rows are the ``+`` interval's, reversed).

``layer`` picks the hidden state: 0 the token embedding, i the residual stream after block
i, and the last (``n_layer``, or ``-1``) the output of the final norm. The file
(``genomamba.infer.h5out``) is written as the regions stream through, under a temporary
name renamed into place at the end.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass

import numpy as np

from genomamba import settings
from genomamba.errors import GenomambaError

DEFAULTS = settings.packaged("embed")
POOLINGS = ("mean", "max", "center", "none")
DTYPES = ("float32", "float16")


@dataclass
class EmbedSettings:
    model: str
    out: str
    bed: str | None = None
    genome: str | None = None
    fasta: str | None = None
    tsv: str | None = None
    pooling: str = DEFAULTS["pooling"]
    layer: int = DEFAULTS["layer"]
    dtype: str = DEFAULTS["dtype"]
    batch_size: int = DEFAULTS["batch_size"]
    device: str = DEFAULTS["device"]
    precision: str = DEFAULTS["precision"]

    def check(self):
        if self.pooling not in POOLINGS:
            raise GenomambaError(f"pooling must be one of {', '.join(POOLINGS)}, got {self.pooling!r}")
        if self.dtype not in DTYPES:
            raise GenomambaError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        settings.check_number("batch_size", self.batch_size, integer=True, minimum=1)
        settings.check_number("layer", self.layer, integer=True)
        if not self.out.endswith((".h5", ".hdf5")):
            raise GenomambaError(f"--out {self.out}: name it .h5 or .hdf5")


def resolve_layer(layer: int, n_layer: int, model_path: str) -> int:
    """``layer`` as 0..n_layer (negative counts from the end: -1 is n_layer)."""
    if not -(n_layer + 1) <= layer <= n_layer:
        raise GenomambaError(f"layer {layer}: {model_path} has layers 0 (embedding) to {n_layer} "
                             f"(or -1 to -{n_layer + 1})")
    return layer % (n_layer + 1)


def hidden_states(backbone, ids, layer: int):
    """The single-strand hidden state ``layer`` (0..n_layer) of ``ids``: (n, L, d_model)."""
    if layer == len(backbone.layers):
        return backbone.run(ids)
    return backbone.stream(ids, layer)  # the model's own stepping (e.g. a converted model's strand swap)


def strand_averaged(model, ids, layer: int, pooling: str):
    """Features of ``ids`` (n, L), both strands averaged: (n, d) or, unpooled, (n, L, d)."""
    from genomamba.model.rcps import both_strands

    n = ids.shape[0]
    hidden = hidden_states(model.backbone, both_strands(ids, model.backbone.complement), layer).float()
    fwd, rev = hidden[:n], hidden[n:]
    if pooling == "none":
        return 0.5 * (fwd + rev.flip(1))
    if pooling == "center":
        return 0.5 * (fwd[:, fwd.shape[1] // 2] + rev[:, rev.shape[1] // 2])
    reduce = (lambda h: h.mean(1)) if pooling == "mean" else (lambda h: h.amax(1))
    return 0.5 * (reduce(fwd) + reduce(rev))


def run_embed(s: EmbedSettings, command: str | None = None) -> dict:
    import torch

    from genomamba import __version__
    from genomamba.data.progress import Progress
    from genomamba.device import autocast, resolve_device, uses_bf16
    from genomamba.infer.h5out import EmbeddingFile
    from genomamba.infer.inputs import length_batches, no_regions, open_inputs
    from genomamba.model.locate import locate_model

    s.check()
    found = locate_model(s.model)
    inputs = open_inputs(s.bed, s.genome, s.fasta, s.tsv)
    device = resolve_device(s.device)
    model = found.load(device)
    layer = resolve_layer(s.layer, model.config.n_layer, found.path)
    attrs = {"format": "genomamba-embeddings", "version": 1, "genomamba_version": __version__,
             "command": command or "", "model": found.path, "model_sha256": found.sha256 or "", "input": inputs.describe(),
             "pooling": s.pooling, "layer": layer, "layer_given": s.layer, "n_layer": model.config.n_layer,
             "strands": "both, averaged", "dtype": s.dtype,
             "precision": "bf16" if uses_bf16(device, s.precision) else "fp32"}
    n = 0
    with EmbeddingFile(s.out, s.dtype, attrs, per_position=s.pooling == "none", source=inputs.path) as out, \
            Progress(total=inputs.count, desc="embed", unit="region") as bar, torch.inference_mode():
        for batch in length_batches(inputs.regions(), s.batch_size):
            ids = torch.from_numpy(np.stack([r.tokens for _, r in batch])).to(device, torch.int64)
            with autocast(device, s.precision):
                feats = strand_averaged(model, ids, layer, s.pooling)
            out.write(batch, feats.float().cpu().numpy())
            n += len(batch)
            bar.update(len(batch))
        if n == 0:
            raise no_regions(inputs)
    shape = out.shape
    print(f"embed: {n} region(s) -> {s.out} (embeddings {'x'.join(map(str, shape))}, {s.dtype})", file=sys.stderr)
    return {"regions": n, "shape": shape, "settings": asdict(s), "attrs": attrs}
