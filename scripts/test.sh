#!/usr/bin/env bash
# The test command: set up .venv, lint, run the whole suite offline. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
.venv/bin/ruff check .
.venv/bin/python -m pytest -q tests "$@"
