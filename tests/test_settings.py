"""One source of defaults: genomamba/configs/<command>.yaml, read by the CLI, the settings
dataclasses and the Snakemake schemas alike; and the layering defaults < --config <
KEY=VALUE < flags, checked where the user meets it (the CLI)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from genomamba import settings
from genomamba.cli import build_parser, main
from genomamba.errors import GenomambaError
from genomamba.model import GenoMambaConfig, GenoMambaForMaskedLM
from genomamba.score.run import ScoreSettings
from genomamba.train.finetune import FinetuneSettings

REPO = Path(__file__).resolve().parents[1]
INPUTS = {"finetune": {"model", "train", "val", "test", "out", "genome"},
          "score": {"model", "reference", "vcf", "out", "head"}}
DATACLASSES = {"finetune": FinetuneSettings, "score": ScoreSettings}
MINIMAL_ARGS = {"finetune": ["finetune", "--model", "m", "--train", "t", "--val", "v", "--out", "o"],
                "score": ["score", "--model", "m", "--reference", "r", "--vcf", "v", "--out", "o.tsv"]}
WORKFLOW_ONLY = {"device"}  # the pipeline sets --device from the entry's gpus


@pytest.mark.parametrize("command", ["finetune", "score"])
def test_dataclass_fields_and_defaults_are_the_packaged_ones(command):
    defaults = settings.packaged(command)
    fields = {f.name: f.default for f in dataclasses.fields(DATACLASSES[command]) if f.name not in INPUTS[command]}
    assert set(fields) == set(defaults)
    for name, value in defaults.items():
        assert fields[name] == (tuple(value) if isinstance(value, list) else value), name


@pytest.mark.parametrize("command", ["finetune", "score"])
def test_cli_without_flags_gives_the_packaged_defaults(command):
    """No flag carries a default of its own that could disagree with the packaged file."""
    args = build_parser().parse_args(MINIMAL_ARGS[command])
    assert settings.from_args(args, command) == settings.packaged(command)


@pytest.mark.parametrize("command", ["finetune", "score"])
def test_schema_lists_every_setting_and_restates_no_default(command):
    schema = yaml.safe_load((REPO / "workflow" / "schemas" / f"{command}.schema.yaml").read_text())
    entry = schema["properties"][command]["additionalProperties"]["properties"]
    defaults = settings.packaged(command)
    assert set(defaults) - WORKFLOW_ONLY <= set(entry)
    restated = {k: v["default"] for k, v in entry.items() if k in defaults and "default" in v}
    assert restated == {}, f"defaults of {command} settings belong in genomamba/configs/{command}.yaml only"


def test_layers_defaults_file_overrides_then_flags(tmp_path):
    path = tmp_path / "ft.yaml"
    path.write_text("mode: probe\nlr: 1e-3\nepochs: 4\n")
    args = build_parser().parse_args(MINIMAL_ARGS["finetune"] + ["--config", str(path), "epochs=7", "seed=3",
                                                                  "--seed", "5"])
    cfg = settings.from_args(args, "finetune")
    assert cfg["mode"] == "probe" and cfg["lr"] == pytest.approx(1e-3)  # the file; "1e-3" read as a number
    assert cfg["epochs"] == 7  # the override wins over the file
    assert cfg["seed"] == 5  # the flag wins over the override
    assert cfg["pooling"] == settings.packaged("finetune")["pooling"]


def test_unknown_setting_suggests_the_close_one():
    with pytest.raises(GenomambaError, match=r"unknown setting 'windw'; did you mean window\?"):
        settings.load(settings.packaged("score"), overrides=["windw=5"])
    with pytest.raises(GenomambaError, match="chunk_size must be an integer"):
        settings.load(settings.packaged("score"), overrides=["chunk_size=big"])


@pytest.mark.parametrize("argv_tail, needle", [
    (["lr=abc"], "lr must be a positive number, got 'abc'"),
    (["epochs=0"], "epochs must be an integer of at least 1, got 0"),
    (["mod=probe"], "unknown setting 'mod'; did you mean mode?"),
    (["mode"], "override 'mode' must look like key=value"),
])
def test_finetune_setting_errors_at_the_cli(tmp_path, capsys, argv_tail, needle):
    argv = ["finetune", "--model", str(tmp_path), "--train", "t.tsv", "--val", "v.tsv", "--out",
            str(tmp_path / "out")] + argv_tail
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and needle in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def scoring_inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("window")
    rng = np.random.default_rng(2)
    seq = "".join(rng.choice(list("ACGT"), size=200))
    (d / "ref.fa").write_text(f">c1\n{seq}\n")
    base = seq[99]
    alt = "ACGT"[("ACGT".index(base) + 1) % 4]
    (d / "in.vcf").write_text("##fileformat=VCFv4.2\n##contig=<ID=c1>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
                              f"c1\t100\t.\t{base}\t{alt}\t.\t.\t.\n")
    torch.manual_seed(0)
    model = GenoMambaForMaskedLM(GenoMambaConfig(d_model=8, n_layer=1))
    model.save_pretrained(d / "trained", training={"window": 64})
    model.save_pretrained(d / "untagged")
    return d


@pytest.mark.parametrize("model, extra, window, said", [
    ("trained", [], 64, "the model's pretraining window"),
    ("untagged", [], 1024, "does not record its pretraining window"),
    ("trained", ["window=32"], 32, None),
    ("trained", ["window=32", "--window", "40"], 40, None),
])
def test_score_window_defaults_to_the_models_pretraining_window(scoring_inputs, tmp_path, capsys,
                                                                model, extra, window, said):
    d = scoring_inputs
    out = tmp_path / "out.tsv"
    argv = ["score", "--model", str(d / model), "--reference", str(d / "ref.fa"), "--vcf", str(d / "in.vcf"),
            "--out", str(out), "--device", "cpu", *extra]
    assert main(argv) == 0
    err = capsys.readouterr().err
    summary = json.loads((tmp_path / "out.summary.json").read_text())
    assert summary["settings"]["window"] == window
    assert summary["settings"]["batch_size"] == max(1, min(64, 65536 // window))
    if said:
        assert said in err
    else:
        assert "pretraining window" not in err
