"""LLR numerics: the LM head and log-softmax run in float32 under bf16 autocast, so the LLR of
a bf16 run is not bf16-quantised and stays close to the fp32 run's (README, "genomamba score").

The model is a tiny PS masked LM trained for a few steps on the bundled yeast chromosome, so
that its logits carry signal (an untrained model's LLRs are all near zero and would bound
nothing)."""

from pathlib import Path

import numpy as np
import pytest
import torch

from genomamba.data import MASK, encode
from genomamba.data.reference import open_reference
from genomamba.model import GenoMambaConfig, GenoMambaForMaskedLM
from genomamba.score.engine import VariantScorer
from genomamba.score.variants import Allele

FASTA = Path(__file__).parent.parent / "resources" / "NC_001133.9.fa.gz"
WINDOW = 65
#: |LLR(bf16 autocast) - LLR(fp32)| bound, nats (README states it)
BF16_LLR_TOLERANCE = 0.01  # measured: 0.003 (0.024 with the head in bf16)


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    reference = open_reference(str(FASTA), in_memory=True)
    contig = reference.contigs[0]
    model = GenoMambaForMaskedLM(GenoMambaConfig(d_model=32, n_layer=2, d_state=8, scan_backend="torch"))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    rng = np.random.default_rng(0)
    for _ in range(60):
        starts = rng.integers(1000, 200_000, size=16)
        ids = torch.from_numpy(np.stack([reference.window(contig, s, s + WINDOW) for s in starts]).astype(np.int64))
        mask = torch.rand(ids.shape) < 0.15
        logits = model(ids.masked_fill(mask, MASK))
        loss = torch.nn.functional.cross_entropy(logits[mask], ids[mask])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval(), reference, contig


def snvs(reference, contig, n=96, seed=1):
    rng = np.random.default_rng(seed)
    out = []
    for i, pos in enumerate(np.sort(rng.choice(np.arange(2000, 150_000), size=n, replace=False))):
        ref = "ACGT"[reference.window(contig, int(pos), int(pos) + 1)[0]]
        alt = "ACGT"[("ACGT".index(ref) + 1 + int(rng.integers(3))) % 4]
        out.append(Allele(i, 0, contig, int(pos), ref, alt))
    return out


def llrs(model, reference, alleles, precision):
    scorer = VariantScorer(model, reference, WINDOW, torch.device("cpu"), batch_size=32, precision=precision,
                           scores=("llr",))
    with torch.inference_mode():
        return np.array([s.llr for s in scorer.score(alleles)])


def is_bf16_difference(x: float) -> bool:
    """x is the difference of two bf16 numbers of about its size (8 significant bits)."""
    return float(torch.tensor(x, dtype=torch.float64).to(torch.bfloat16).double()) == x


def test_bf16_llr_is_close_to_fp32_and_not_quantised(trained):
    model, reference, contig = trained
    alleles = snvs(reference, contig)
    fp32 = llrs(model, reference, alleles, "fp32")
    bf16 = llrs(model, reference, alleles, "bf16")
    assert np.std(fp32) > 0.05, "the trained model's LLRs carry no signal"
    assert np.max(np.abs(bf16 - fp32)) < BF16_LLR_TOLERANCE
    assert np.corrcoef(bf16, fp32)[0, 1] > 0.99
    # from float32 logits, most LLRs need more than bf16's 8 significant bits
    assert sum(is_bf16_difference(x) for x in bf16) < len(bf16) // 4


def test_llr_matches_the_full_forward(trained):
    """The one-position head (logits_at) gives the LLR of the full forward's logits."""
    model, reference, contig = trained
    alleles = snvs(reference, contig, n=8, seed=2)
    got = llrs(model, reference, alleles, "fp32")
    flank = (WINDOW - 1) // 2
    for a, llr in zip(alleles, got):
        ids = reference.window(contig, a.pos - flank, a.pos + flank + 1).astype(np.int64)
        ids[flank] = MASK
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.from_numpy(ids)[None])[0, flank, :4].double(), -1)
        want = float(logp[encode(a.alt)[0]] - logp[encode(a.ref)[0]])
        assert abs(llr - want) < 1e-5


@pytest.mark.gpu
@pytest.mark.parametrize("window", [65, 1023, 4097])
def test_gpu_fast_path_matches_cpu(trained, window):
    """The GPU path (Triton scan in one pass, pinned copies, one-position head) gives the CPU
    path's LLRs in fp32, at windows short enough for one scan pass and long enough for several."""
    model, reference, contig = trained
    alleles = snvs(reference, contig, n=40, seed=3)

    def run(device):
        m = GenoMambaForMaskedLM(model.config).to(device).eval()
        m.load_state_dict(model.state_dict())
        m.set_scan_backend("auto")
        scorer = VariantScorer(m, reference, window, torch.device(device), batch_size=16, precision="fp32",
                               scores=("llr",))
        with torch.inference_mode():
            return np.array([s.llr for s in scorer.score(alleles)])

    torch.backends.cuda.matmul.allow_tf32 = False
    np.testing.assert_allclose(run("cuda"), run("cpu"), atol=1e-4)
