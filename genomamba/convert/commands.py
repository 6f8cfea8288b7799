"""The ``genomamba convert`` subcommand."""

from __future__ import annotations

import argparse

CONVERT_HELP = """\
Convert a published Caduceus checkpoint into a genomamba model directory, or a genomamba
model into a Caduceus checkpoint (for Caduceus's own Hugging Face code).

  genomamba convert --from caduceus SRC --out MODEL_DIR
      SRC: a Caduceus checkpoint directory (config.json + model.safetensors or
      pytorch_model.bin), or a Hugging Face hub cache folder of one. MODEL_DIR works
      with every genomamba command (score --model, finetune --model, ...).
  genomamba convert --to caduceus MODEL --out CADUCEUS_DIR
      MODEL: a genomamba masked-LM directory, pretraining run or training checkpoint.

The conversion is exact (same log-probabilities); a Caduceus setting genomamba cannot
represent is an error naming it, and nothing is written. See docs/convert.md.
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "convert", help="import a Caduceus checkpoint or export a model to Caduceus's format",
        description=CONVERT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    way = p.add_mutually_exclusive_group(required=True)
    way.add_argument("--from", dest="from_format", choices=("caduceus",),
                     help="SOURCE is a checkpoint of this format; write a genomamba model directory")
    way.add_argument("--to", dest="to_format", choices=("caduceus",),
                     help="SOURCE is a genomamba model; write a checkpoint of this format")
    p.add_argument("source", metavar="SOURCE", help="the checkpoint or model to convert")
    p.add_argument("--out", required=True, metavar="DIR", help="directory to write (atomically)")
    p.set_defaults(func=run_convert_command)


def run_convert_command(args) -> int:
    from genomamba.convert.run import export_caduceus, import_caduceus

    command = getattr(args, "command_line", None)
    if args.from_format:
        out = import_caduceus(args.source, args.out, command=command)
    else:
        out = export_caduceus(args.source, args.out, command=command)
    print(f"wrote {out}")
    return 0
