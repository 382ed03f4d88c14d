#!/usr/bin/env bash
# The main job: set up .venv (and the default corpus), train configs/base.yaml German->English from scratch, evaluate
# on the test split with beam search, save the checkpoint folder with its attention heatmaps to outputs/demo.
# Extra arguments go to scripts/train.py after the base preset: more presets first (configs/scaled_dot.yaml), then
# --key value pairs (--max_steps 1000).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
# glibc hands large freed blocks back to the OS and page-faults them in again at every training step; keeping them
# trains 1.7x faster on a CPU (docs/benchmark.md). A value already set wins.
export GLIBC_TUNABLES="${GLIBC_TUNABLES:-glibc.malloc.mmap_threshold=2147483647:glibc.malloc.trim_threshold=4294967295}"
.venv/bin/python scripts/train.py --config configs/base.yaml "$@"
