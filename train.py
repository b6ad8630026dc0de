#!/usr/bin/env python3
"""Train OccWorld on Tokyo sessions: `python train.py --help` (flags: the guide's "Training Arguments")."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run from a checkout without installing

from occworld_tokyo.threads import prepare_openmp  # noqa: E402

prepare_openmp()  # before torch loads: OpenMP threads sleep instead of spinning on a busy machine
from occworld_tokyo.training.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
