#!/usr/bin/env python3
"""Check a data folder of sessions (keys, shapes, dtypes, poses, continuity, statistics); non-zero exit on a problem."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from occworld_tokyo.sessions.validate import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
