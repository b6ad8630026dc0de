#!/usr/bin/env bash
# Install everything the project needs into the current Python (idempotent).
# torch: a CUDA build already installed is kept; otherwise the pinned CPU build is installed first, so that
# no dependency pulls the multi-GB CUDA wheels onto a CPU machine.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ! "$PY" -c "import torch" >/dev/null 2>&1; then
    "$PY" -m pip install --quiet "torch==2.13.0"
fi
# viz: the optional viewer (rerun-sdk); installed here so that its tests run in CI, not skipped
"$PY" -m pip install --quiet -e ".[dev,viz]"
"$PY" -c "import torch, numpy, embreex, numba, lxml, pyproj, rerun; print(f'setup ok: torch {torch.__version__}, numpy {numpy.__version__}')"
