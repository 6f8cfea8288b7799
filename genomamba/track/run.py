"""``genomamba track``: a masked-LM score at every position of the chosen regions.

0. Everything the run needs is checked before any forward pass: the settings, the model
   (``genomamba.model.locate``), the reference, and every BED line (``plan``).
1. Each part (at most ``part_size`` bases of one region) is scored: for every base whose
   reference is A/C/G/T, its window (``genomamba.data.windows``: the geometry of
   ``genomamba score``) with that base [MASK]ed goes through the model, and
   ``logits_at(ids, flank, rc_average=True)`` (float32, both strands) gives, after a
   log-softmax over A, C, G, T, the part's (n, 4) log-probabilities. These are saved in
   ``OUT.bw.parts/`` as the part finishes (atomically), so an interrupted run resumes
   from its finished parts; a parts directory from a run with another model, reference,
   regions, window or precision is discarded.
2. When every part is there, the outputs (``output``) are written from them: the
   --all-alts TSV and its index, then the bigWig, each renamed into place when complete;
   then the parts directory is removed.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time

import numpy as np

from genomamba.data.progress import Progress
from genomamba.data.reference import open_reference
from genomamba.data.windows import masked_windows, odd_span
from genomamba.files import atomic_path, raise_if_full, remove_stale_temporaries, write_json
from genomamba.model.locate import locate_model
from genomamba.track.plan import Part, plan_parts
from genomamba.track.settings import TrackSettings

__all__ = ["TrackSettings", "run_track"]

PARTS_FILE = "parts.json"


def run_track(s: TrackSettings) -> dict:
    import torch

    from genomamba.device import inference_batch, resolve_device, uses_bf16
    from genomamba.track.output import AltsWriter, BigWigWriter, position_scores

    found = locate_model(s.model)
    s.check(found.window)
    device = resolve_device(s.device)
    if s.batch_size is None:
        s.batch_size = inference_batch(s.window, device)
    reference = open_reference(s.reference)
    parts = plan_parts(reference, s.regions, s.part_size)
    flank, span = odd_span(s.window)
    key = {"model_sha256": found.sha256, "model": found.path, "reference": os.path.abspath(s.reference),
           "window": span, "precision": "bf16" if uses_bf16(device, s.precision) else "fp32",
           "parts": [[p.contig, p.start, p.end] for p in parts]}
    approximate = s.masks_per_window > 1
    if approximate:  # parts of an exact run are not reused by an approximate one, nor the reverse
        key["approximate"] = {"masks_per_window": s.masks_per_window, "mask_spacing": s.mask_spacing}
    if s.all_alts:  # what a killed run left beside the --all-alts file (the lock on --out is held)
        remove_stale_temporaries(s.all_alts)
    model = found.load(device)  # first: a model that cannot be read leaves no parts directory
    store = PartStore(s.out + ".parts", key)
    started = time.time()
    total = sum(p.length for p in parts)
    done = {i for i in range(len(parts)) if store.has(i)}
    computed = 0
    pairs = ([], [])  # approximate mode: (approximate, exact) --score values at sampled positions
    rng = np.random.default_rng(0)
    sampling = 0.0  # seconds spent on the exact sample (not counted in the throughput)
    with Progress(total=total, desc="track", unit="pos", initial=sum(parts[i].length for i in done)) as bar:
        for i, part in enumerate(parts):
            if i in done:
                continue
            with torch.inference_mode():
                if approximate:
                    logp = part_logp_approximate(model, reference, part, flank, device, s.batch_size, s.precision,
                                                 s.masks_per_window, s.mask_spacing)
                else:
                    logp = part_logp(model, reference, part, flank, device, s.batch_size, s.precision)
            store.save(i, logp)
            computed += part.length
            bar.update(part.length)
            if approximate and s.agreement_sample:
                take = min(part.length, -(-s.agreement_sample * part.length // total))
                sample = np.sort(rng.choice(part.length, size=take, replace=False))
                t0 = time.time()
                with torch.inference_mode():
                    exact = part_logp(model, reference, part, flank, device, s.batch_size, s.precision, sample)
                sampling += time.time() - t0
                ref = reference.fetch(part.contig, part.start, part.end)
                a, e = (position_scores(x, ref, s.score)[sample] for x in (logp, exact))
                ok = ~(np.isnan(a) | np.isnan(e))
                pairs[0].extend(a[ok])
                pairs[1].extend(e[ok])
    seconds = time.time() - started - sampling

    alts = AltsWriter(s.all_alts) if s.all_alts else None
    bigwig = BigWigWriter(s.out, [(c, reference.length(c)) for c in reference.contigs if reference.length(c)])
    scored = 0
    try:
        for i, part in enumerate(parts):
            logp = store.load(i)
            ref = reference.fetch(part.contig, part.start, part.end)
            scored += bigwig.add(part.contig, part.start, position_scores(logp, ref, s.score))
            if alts is not None:
                alts.add(part.contig, part.start, logp, ref)
        if alts is not None:
            alts.close()
            alts = None
        bigwig.close()
    except BaseException:
        bigwig.abort()
        if alts is not None:
            alts.abort()
        raise
    store.remove()
    reference.keep_index()
    rate = computed / seconds if seconds > 0 else float("inf")
    result = {"positions": total, "scored": scored, "no_value": total - scored, "computed": computed,
              "reused": total - computed, "seconds": round(seconds, 3), "positions_per_second": round(rate, 3)}
    print(f"track: {scored} of {total} positions scored ({total - scored} not A/C/G/T), "
          f"{computed} computed in {seconds:.1f} s ({rate:.1f} positions/s), "
          f"{total - computed} reused from {store.path}; wrote {s.out}"
          + (f" and {s.all_alts}" if s.all_alts else ""), file=sys.stderr)
    if approximate:
        result["agreement"] = agreement(np.asarray(pairs[0]), np.asarray(pairs[1]))
        g = result["agreement"]
        print(f"track: approximate ({s.masks_per_window} masks per window, {s.mask_spacing} bases apart); "
              + (f"{s.score} against the exact scores at {g['positions']} sampled positions (computed in {sampling:.1f} s, not in the rate above): "
                 f"Pearson r {g['pearson']}, Spearman rho {g['spearman']}" if g["pearson"] is not None
                 else "too few positions computed for an agreement figure"), file=sys.stderr)
    return result


def part_logp(model, reference, part: Part, flank: int, device, batch_size: int, precision: str,
              positions: np.ndarray | None = None) -> np.ndarray:
    """(n, 4) float32 log-softmax over A, C, G, T at each masked base of ``part``; NaN rows
    where the reference base is not A/C/G/T (not computed). ``positions`` (indices into the
    part): only those are computed, the other rows are NaN."""
    import torch

    from genomamba.device import autocast

    padded = reference.window(part.contig, part.start - flank, part.end + flank)
    bases = padded[flank : flank + part.length]
    todo = np.flatnonzero(bases < 4)
    if positions is not None:
        todo = np.intersect1d(todo, positions)
    out = np.full((part.length, 4), np.nan, dtype=np.float32)
    cuda = device.type == "cuda"
    rows = []
    for s in range(0, len(todo), batch_size):
        chosen = todo[s : s + batch_size]
        batch = torch.from_numpy(masked_windows(padded, flank, chosen))
        ids = (batch.pin_memory() if cuda else batch).to(device, torch.int64, non_blocking=cuda)
        with autocast(device, precision):
            logits = model.logits_at(ids, flank, rc_average=True)[:, :4]
            rows.append(torch.log_softmax(logits.float(), dim=-1))
    if rows:
        out[todo] = torch.cat(rows).cpu().numpy()
    return out


def part_logp_approximate(model, reference, part: Part, flank: int, device, batch_size: int, precision: str,
                          masks: int, spacing: int) -> np.ndarray:
    """``part_logp``'s array from one pass per ``masks`` positions (the approximate mode).

    The part is cut into blocks of masks x spacing bases; window i of a block [MASK]s the
    block's bases i, i + spacing, ... (those that are A/C/G/T) and is centred on the middle
    one of them, (masks - 1) // 2, so every mask lies at most masks // 2 x spacing bases
    from the middle; each masked base's logits are read at its own place in the window."""
    import torch

    from genomamba.data.vocab import MASK
    from genomamba.device import autocast

    block = masks * spacing
    n_blocks = -(-part.length // block)
    margin = flank + block  # centres of the last block may lie past the part's end
    padded = reference.window(part.contig, part.start - margin, part.end + margin)
    bases = padded[margin : margin + part.length]
    # (windows, masks) part indices of the masked bases; window w = (block b, offset i)
    b, i = np.divmod(np.arange(n_blocks * spacing), spacing)
    where = b[:, None] * block + i[:, None] + spacing * np.arange(masks)[None, :]
    centre = where[:, (masks - 1) // 2]
    inside = where < part.length
    masked = inside & (bases[np.minimum(where, part.length - 1)] < 4)
    keep = masked.any(axis=1)
    where, centre, masked = where[keep], centre[keep], masked[keep]
    view = np.lib.stride_tricks.sliding_window_view(padded, 2 * flank + 1)
    out = np.full((part.length, 4), np.nan, dtype=np.float32)
    cuda = device.type == "cuda"
    for s in range(0, len(where), batch_size):
        w, c, m = where[s : s + batch_size], centre[s : s + batch_size], masked[s : s + batch_size]
        windows = np.array(view[c + margin - flank], dtype=np.uint8)
        at = flank + (w - c[:, None])  # each mask's index in its window
        rows, cols = np.nonzero(m)
        windows[rows, at[rows, cols]] = MASK
        ids = torch.from_numpy(windows)
        ids = (ids.pin_memory() if cuda else ids).to(device, torch.int64, non_blocking=cuda)
        with autocast(device, precision):
            logits = model.logits_at(ids, torch.from_numpy(at).to(device), rc_average=True)[..., :4]
            logp = torch.log_softmax(logits.float(), dim=-1).cpu().numpy()
        out[w[rows, cols]] = logp[rows, cols]
    return out


def agreement(approx: np.ndarray, exact: np.ndarray) -> dict:
    """Pearson's r and Spearman's rho (Pearson's r of the ranks; ties broken by order) of
    paired approximate and exact values."""
    if len(approx) < 3:
        return {"positions": int(len(approx)), "pearson": None, "spearman": None}

    def ranks(x):
        return np.argsort(np.argsort(x, kind="stable"), kind="stable")

    return {"positions": int(len(approx)), "pearson": round(float(np.corrcoef(approx, exact)[0, 1]), 4),
            "spearman": round(float(np.corrcoef(ranks(approx), ranks(exact))[0, 1]), 4)}


class PartStore:
    """Finished parts of one run, ``DIR/part-N.npy``, beside ``DIR/parts.json`` (what the
    run was: a directory made for another run is emptied first)."""

    def __init__(self, path: str, key: dict):
        self.path = path
        manifest = os.path.join(path, PARTS_FILE)
        if os.path.isdir(path):
            try:
                with open(manifest) as fh:
                    same = json.load(fh) == key
            except (OSError, ValueError):
                same = False
            if not same:
                print(f"track: {path} holds parts of another run; starting over", file=sys.stderr)
                shutil.rmtree(path)
        if not os.path.isdir(path):
            os.makedirs(path)
            write_json(manifest, key)

    def _file(self, i: int) -> str:
        return os.path.join(self.path, f"part-{i:06d}.npy")

    def has(self, i: int) -> bool:
        return os.path.isfile(self._file(i))

    def save(self, i: int, logp: np.ndarray) -> None:
        with atomic_path(self._file(i)) as tmp, open(tmp, "wb") as fh:
            try:
                np.save(fh, logp)
            except OSError:  # numpy reports a short write without its errno
                raise_if_full(tmp)
                raise

    def load(self, i: int) -> np.ndarray:
        return np.load(self._file(i))

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
