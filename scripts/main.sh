#!/usr/bin/env bash
# The main job: set up .venv (and the default corpus), train configs/demo.yaml German->English from scratch, evaluate
# on the test split with beam search, save the checkpoint folder with its attention heatmaps to outputs/demo.
# Extra arguments go to scripts/train.py (e.g. --attention_type scaled_dot --output_dir outputs/scaled_dot).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
.venv/bin/python scripts/train.py --config configs/demo.yaml "$@"
