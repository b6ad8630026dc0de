#!/usr/bin/env python3
"""Generate drone/rover training sessions from PLATEAU city models (see `--help` and README.md)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from occworld_tokyo.sessions.command import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
