"""save_pretrained / from_pretrained: bit-exact round trip, clear errors for bad checkpoints."""

import hashlib
import json

import pytest
import torch
from safetensors.torch import save as save_safetensors

from genomamba.errors import GenomambaError
from genomamba.model import GenoMambaConfig, GenoMambaForMaskedLM, GenoMambaForSequenceClassification
from genomamba.model import io


from model_helpers import one_thread, perturb, tiny_config  # noqa: E402,F401


@pytest.fixture
def mlm_dir(tmp_path):
    torch.manual_seed(0)
    model = GenoMambaForMaskedLM(tiny_config())
    perturb(model, seed=1)
    path = tmp_path / "mlm"
    model.save_pretrained(path)
    return model, path


def assert_same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert sa[k].dtype == sb[k].dtype and torch.equal(sa[k], sb[k]), k


X = torch.tensor([[0, 1, 2, 3, 4, 3, 2, 2, 1, 0, 6]])


def test_masked_lm_round_trip_is_bit_exact(mlm_dir):
    model, path = mlm_dir
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "model.safetensors", "vocab.json"]
    loaded = GenoMambaForMaskedLM.from_pretrained(path)
    assert loaded.config == model.config
    assert_same_state(model, loaded)
    model.eval(), loaded.eval()
    assert torch.equal(loaded(X), model(X))
    meta = json.loads((path / "config.json").read_text())
    assert meta["format_version"] == io.FORMAT_VERSION and meta["task"] == "masked_lm"
    assert json.loads((path / "vocab.json").read_text())["tokens"][:4] == ["A", "C", "G", "T"]


@pytest.mark.parametrize("rc_mode", ["ps", "ph"])
def test_classifier_round_trip_is_bit_exact(tmp_path, rc_mode):
    torch.manual_seed(0)
    model = GenoMambaForSequenceClassification(tiny_config(rc_mode=rc_mode), num_labels=3, pooling="max")
    perturb(model, seed=2)
    model.save_pretrained(tmp_path / "cls")
    loaded = GenoMambaForSequenceClassification.from_pretrained(tmp_path / "cls")
    assert (loaded.num_labels, loaded.pooling, loaded.rc_average) == (3, "max", rc_mode == "ph")
    assert_same_state(model, loaded)
    assert torch.equal(loaded.eval()(X), model.eval()(X))


def test_classifier_from_masked_lm_checkpoint_loads_the_backbone(mlm_dir):
    model, path = mlm_dir
    clf = GenoMambaForSequenceClassification.from_pretrained(path, num_labels=4, pooling="center")
    assert clf.num_labels == 4 and clf.pooling == "center"
    for k, v in model.backbone.state_dict().items():
        assert torch.equal(clf.backbone.state_dict()[k], v), k
    assert torch.equal(clf.eval().embed(X), model.eval().embed(X))
    assert clf(X).shape == (1, 4)
    with pytest.raises(GenomambaError, match="num_labels"):
        GenoMambaForSequenceClassification.from_pretrained(path)
    # and back: a masked-LM model from the classifier's directory gets the same backbone
    clf.save_pretrained(path.parent / "cls")
    mlm = GenoMambaForMaskedLM.from_pretrained(path.parent / "cls")
    assert torch.equal(mlm.eval()(X), model(X))


def test_runtime_fields_may_be_overridden(mlm_dir):
    _, path = mlm_dir
    loaded = GenoMambaForMaskedLM.from_pretrained(path, gradient_checkpointing=True, scan_backend="triton")
    assert loaded.config.gradient_checkpointing and loaded.config.scan_backend == "triton"
    with pytest.raises(TypeError, match="d_model"):
        GenoMambaForMaskedLM.from_pretrained(path, d_model=32)


def test_overwrite_is_atomic_and_leaves_nothing_behind(mlm_dir):
    model, path = mlm_dir
    perturb(model, seed=3)
    model.save_pretrained(path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["mlm"]
    assert_same_state(model, GenoMambaForMaskedLM.from_pretrained(path))


def test_refuses_to_overwrite_other_directories(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "precious.txt").write_text("keep me")
    with pytest.raises(GenomambaError, match="not a genomamba checkpoint"):
        GenoMambaForMaskedLM(tiny_config()).save_pretrained(tmp_path / "data")
    assert (tmp_path / "data" / "precious.txt").read_text() == "keep me"


def edit_meta(path, fn):
    meta = json.loads((path / "config.json").read_text())
    fn(meta)
    (path / "config.json").write_text(json.dumps(meta))


def rewrite_weights(path, tensors):
    data = save_safetensors(tensors)
    (path / "model.safetensors").write_bytes(data)
    edit_meta(path, lambda m: m.update(weights_sha256=hashlib.sha256(data).hexdigest()))


def corrupt_truncate(path):
    data = (path / "model.safetensors").read_bytes()
    (path / "model.safetensors").write_bytes(data[: len(data) // 2])


def corrupt_bitflip(path):
    data = bytearray((path / "model.safetensors").read_bytes())
    data[-10] ^= 0x01
    (path / "model.safetensors").write_bytes(bytes(data))


def corrupt_header_with_valid_checksum(path):
    data = b"\xff" * 8 + b"not a safetensors header"
    (path / "model.safetensors").write_bytes(data)
    edit_meta(path, lambda m: m.update(weights_sha256=hashlib.sha256(data).hexdigest()))


def drop_a_weight(path):
    from safetensors.torch import load_file
    tensors = load_file(path / "model.safetensors")
    tensors.pop("backbone.layers.1.mixer.rev.A_log")
    rewrite_weights(path, tensors)


def add_a_weight(path):
    from safetensors.torch import load_file
    tensors = load_file(path / "model.safetensors")
    tensors["backbone.layers.2.norm.weight"] = torch.ones(16)
    rewrite_weights(path, tensors)


CASES = {
    "truncated": (corrupt_truncate, "checksum mismatch"),
    "bit flip": (corrupt_bitflip, "checksum mismatch"),
    "bad header": (corrupt_header_with_valid_checksum, "cannot read weights"),
    "weights deleted": (lambda p: (p / "model.safetensors").unlink(), "missing weights file"),
    "missing weight": (drop_a_weight, r"missing weights backbone\.layers\.1\.mixer\.rev\.A_log"),
    "extra weight": (add_a_weight, r"unexpected weights backbone\.layers\.2\.norm\.weight"),
    "config edited": (lambda p: edit_meta(p, lambda m: m["config"].update(d_state=4)),
                      # the first mismatch in model order: x_proj gives dt_rank + 2 * d_state rows
                      r"layers\.0\.mixer\.fwd\.x_proj\.weight has shape \(17, 32\) in the checkpoint "
                      r"but \(9, 32\).*and \d+ more"),
    "newer format": (lambda p: edit_meta(p, lambda m: m.update(format_version=io.FORMAT_VERSION + 1)),
                     "written by a newer genomamba"),
    "older format": (lambda p: edit_meta(p, lambda m: m.update(format_version=0)),
                     "format 0 is not readable"),
    "no format version": (lambda p: edit_meta(p, lambda m: m.pop("format_version")), "no format_version"),
    "unknown field": (lambda p: edit_meta(p, lambda m: m["config"].update(d_fancy=3)),
                      "unknown config field.*d_fancy"),
    "missing field": (lambda p: edit_meta(p, lambda m: m["config"].pop("d_conv")), "missing config field.*d_conv"),
    "bad value": (lambda p: edit_meta(p, lambda m: m["config"].update(rc_mode="both")), "rc_mode must be one of"),
    "vocabulary": (lambda p: (p / "vocab.json").write_text(json.dumps({"format_version": 1, "tokens": ["A"]})),
                   "vocabulary"),
    "config not json": (lambda p: (p / "config.json").write_text("{oops"), "not valid JSON"),
    "config missing": (lambda p: (p / "config.json").unlink(), "config.json: missing"),
    "other model": (lambda p: edit_meta(p, lambda m: m.update(model_type="caduceus")), "model_type"),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_checkpoint_gives_a_clear_error(mlm_dir, case):
    _, path = mlm_dir
    damage, message = CASES[case]
    damage(path)
    with pytest.raises(GenomambaError, match=message) as info:
        GenoMambaForMaskedLM.from_pretrained(path)
    assert str(path) in str(info.value)


def test_missing_directory(tmp_path):
    with pytest.raises(GenomambaError, match="no such checkpoint directory"):
        GenoMambaForMaskedLM.from_pretrained(tmp_path / "nope")
