#!/usr/bin/env bash
# Fetch the peers' tagged sources into .peer/ (ignored by git; never part of this repository)
# for the side-by-side benchmarks (bench_scan.py --peer mamba-ssm, bench_model.py --peer caduceus):
#   .peer/mamba          state-spaces/mamba v2.3.2 (mamba-ssm's selective scan, csrc/selective_scan)
#   .peer/causal-conv1d  Dao-AILab/causal-conv1d v1.6.1.post4 (used by Caduceus's Mamba blocks)
#   .peer/caduceus       kuleshov-group/caduceus (its Hugging Face model code), commit 0060a6d
# The CUDA extensions are built on the GPU machine by benchmarks/peers.py (cached in .peer/build/).
#   benchmarks/get_peers.sh [DEST]        # default .peer
set -euo pipefail
dest="${1:-$(cd "$(dirname "$0")/.." && pwd)/.peer}"
mkdir -p "$dest"
get() {  # get NAME URL REF
    [ -d "$dest/$1/.git" ] || git clone -q "$2" "$dest/$1"
    git -C "$dest/$1" fetch -q --tags origin
    git -C "$dest/$1" -c advice.detachedHead=false checkout -q "$3"
    echo "$dest/$1: $(git -C "$dest/$1" rev-parse --short HEAD) ($3)"
}
get mamba https://github.com/state-spaces/mamba v2.3.2
get causal-conv1d https://github.com/Dao-AILab/causal-conv1d v1.6.1.post4
get caduceus https://github.com/kuleshov-group/caduceus 0060a6d8079b6a040fc55d505e15972a327b70a6
