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

# The default corpus: Debian's trans-de-en (the Ding dictionary's sentence pairs, GPL-2+), read where it is installed.
if [ ! -f /usr/share/trans/de-en ]; then
    SUDO=""
    if [ "$(id -u)" != 0 ] && command -v sudo > /dev/null; then SUDO="sudo"; fi
    if command -v apt-get > /dev/null; then
        $SUDO apt-get install -y -q trans-de-en > /dev/null 2>&1 \
            || { $SUDO apt-get update -q > /dev/null && $SUDO apt-get install -y -q trans-de-en > /dev/null; } \
            || echo "setup: could not install trans-de-en; the default corpus is missing (see README)" >&2
    else
        echo "setup: no apt-get; install Debian's trans-de-en or pass --corpus to scripts/train.py" >&2
    fi
fi
