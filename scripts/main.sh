#!/usr/bin/env bash
# The main job: set up .venv, then train on the default task, evaluate, save the checkpoint, plot the attention.
# Extra arguments go to scripts/demo.py (e.g. --attention_type scaled_dot).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
.venv/bin/python scripts/demo.py --output_dir outputs/demo --max_steps 400 --per_device_train_batch_size 64 \
    --learning_rate 3e-3 --logging_steps 50 --save_strategy no --report_to none "$@"
