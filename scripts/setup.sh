#!/usr/bin/env bash
# Sets up a virtual environment for this repository on a fresh machine; safe to run again (it only installs what is
# missing). torch comes first and pinned: on a machine without it, a plain `torch` requirement pulls a multi-GB CUDA
# build.
#   VENV         the environment's folder (default .venv)
#   CONSTRAINTS  the pins to install with (default constraints.txt, the versions the tests last passed with); set it
#                empty to resolve the newest releases pyproject.toml allows, as `pip install .` does for a user
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
VENV="${VENV:-.venv}"
CONSTRAINTS="${CONSTRAINTS-constraints.txt}"
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)
"${PIP[@]}" "torch==${TORCH_VERSION}"
if [ -n "$CONSTRAINTS" ]; then
    "${PIP[@]}" -c "$CONSTRAINTS" -e ".[dev,plots,app]"
else
    # The newest releases of everything but torch, even where an older one is installed already.
    TORCH_PIN="$(mktemp)"
    echo "torch==${TORCH_VERSION}" > "$TORCH_PIN"
    "${PIP[@]}" --upgrade --upgrade-strategy eager -c "$TORCH_PIN" -e ".[dev,plots,app]"
    rm -f "$TORCH_PIN"
fi

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

# A headless browser for the explorer's page test (tests/test_explorer.py skips without one). Playwright drives
# Debian's chromium; nothing is downloaded from a browser site. Never fatal: set-up goes on without it.
if ! command -v chromium > /dev/null && ! command -v chromium-browser > /dev/null; then
    SUDO=""
    if [ "$(id -u)" != 0 ] && command -v sudo > /dev/null; then SUDO="sudo"; fi
    if command -v apt-get > /dev/null && { [ "$(id -u)" = 0 ] || [ -n "$SUDO" ]; }; then
        $SUDO apt-get install -y -q chromium > /dev/null 2>&1 \
            || { $SUDO apt-get update -q > /dev/null 2>&1 && $SUDO apt-get install -y -q chromium > /dev/null 2>&1; } \
            || echo "setup: could not install chromium; the explorer's browser test will be skipped" >&2
    else
        echo "setup: no chromium and no usable apt-get; the explorer's browser test will be skipped" >&2
    fi
fi
