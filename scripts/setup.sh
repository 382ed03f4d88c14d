#!/usr/bin/env bash
# Sets up .venv for this repository on a fresh machine; safe to run again (it only installs what is missing).
# torch comes first and pinned: on a machine without it, a plain `torch` requirement pulls a multi-GB CUDA build.
# constraints.txt pins the library versions the tests were run with (pyproject.toml stays permissive for users).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check "torch==${TORCH_VERSION}"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev,plots]"
