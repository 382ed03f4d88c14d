#!/usr/bin/env bash
# The test command: lint, then the whole suite offline twice: in .venv with the pinned versions (constraints.txt),
# and in .venv-latest with the newest releases pyproject.toml allows (what `pip install .` gives a user today).
# Extra arguments go to pytest (both passes); LATEST=0 skips the second pass.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
# glibc hands large freed blocks back to the OS and page-faults them in again at every training step; keeping them
# trains 1.7x faster on a CPU (docs/benchmark.md). A value already set wins.
export GLIBC_TUNABLES="${GLIBC_TUNABLES:-glibc.malloc.mmap_threshold=2147483647:glibc.malloc.trim_threshold=4294967295}"

versions() {
    "$1/bin/python" -c "import importlib.metadata as m; print(', '.join(f'{p} {m.version(p)}' for p in \
        ('torch', 'transformers', 'accelerate', 'datasets', 'evaluate', 'huggingface_hub', 'tokenizers')))"
}

bash scripts/setup.sh
.venv/bin/ruff check .
echo "== pinned: $(versions .venv)"
.venv/bin/python -m pytest -q tests "$@"

if [ "${LATEST:-1}" != 0 ]; then
    VENV=.venv-latest CONSTRAINTS="" bash scripts/setup.sh
    echo "== latest: $(versions .venv-latest)"
    .venv-latest/bin/python -m pytest -q tests "$@"
fi
