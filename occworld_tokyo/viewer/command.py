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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
        if out.suffix != ".rrd":
            print(f"error: --save {out}: the file name must end in .rrd", file=sys.stderr)
            return 2
        tmp = out.with_name(out.name + ".tmp")
        out.parent.mkdir(parents=True, exist_ok=True)
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
    rec.flush()
    rec.disconnect()
    if tmp is not None:
        os.replace(tmp, args.save)
        print(f"{what['kind']}: {len(what['frames'])} frame(s) -> {args.save}")
    return 0
