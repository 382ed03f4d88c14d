#!/usr/bin/env bash
# The main job: set up .venv, then train on the default task, evaluate, save the checkpoint, plot the attention.
# Extra arguments go to scripts/demo.py (e.g. --attention_type scaled_dot).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
.venv/bin/python scripts/demo.py --config configs/demo.yaml "$@"
