"""`occworld-tokyo view SESSION_OR_FORECAST [--save FILE.rrd] [--frames a:b]`: the rerun viewer (recording.py)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="occworld-tokyo view",
                                description="Show a session folder, or a forecast --out folder (ground truth and "
                                            "forecast side by side), in the rerun viewer. Needs the optional "
                                            "extra: pip install 'occworld-tokyo[viz]'.")
    p.add_argument("path", metavar="SESSION_OR_FORECAST")
    p.add_argument("--save", metavar="FILE.rrd", help="write a .rrd file (open it later with `rerun FILE.rrd`) "
                                                     "instead of starting the viewer")
    p.add_argument("--frames", metavar="a:b", help="only frames a..b-1 (python slice; default: all)")
    return p


def _save_problem(out: Path) -> str | None:
    """Why --save cannot write `out` (checked before anything is read or recorded), or None."""
    from occworld_tokyo.errors import UserError
    from occworld_tokyo.locks import check_writable

    if out.suffix != ".rrd":
        return f"--save {out}: the file name must end in .rrd"
    if out.is_dir():
        return f"--save {out} is a folder: give a file name ending in .rrd"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        check_writable(out.parent, "--save")
    except OSError as exc:
        return f"--save {out}: cannot create its folder {out.parent} ({exc.strerror or exc}); choose another place"
    except UserError as exc:
        return f"--save {out}: {exc}"
    return None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.save:
        problem = _save_problem(Path(args.save))
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            return 2
    from occworld_tokyo.viewer.recording import _rr, record

    try:
        rr = _rr()
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rec = rr.RecordingStream("occworld_tokyo")
    tmp = None
    if args.save:
        out = Path(args.save)
        tmp = out.with_name(out.name + ".tmp")
        rec.save(str(tmp))
    else:
        rec.spawn()
    try:
        what = record(args.path, rec, args.frames)
    except (ValueError, OSError, KeyError, RuntimeError) as exc:  # UserError (DataError) is a RuntimeError
        rec.disconnect()
        if tmp is not None and tmp.exists():
            tmp.unlink()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        rec.flush()
        rec.disconnect()
        if tmp is not None:
            os.replace(tmp, args.save)
    except (OSError, RuntimeError) as exc:  # the disk filled up or went away while recording
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        print(f"error: --save {args.save}: cannot write it ({exc}); free space there or choose another place",
              file=sys.stderr)
        return 2
    if tmp is not None:
        print(f"{what['kind']}: {len(what['frames'])} frame(s) -> {args.save}")
    return 0
