"""`occworld-tokyo export --format occ3d|uniocc SESSIONS_DIR OUT_DIR` (docs/export.md)."""

from __future__ import annotations

import argparse
import sys

from occworld_tokyo.errors import UserError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="occworld-tokyo export",
                                description="Write finished sessions in the Occ3D / released OccWorld layout or in "
                                            "UniOcc's. Sessions must be generated with --grid occ3d (rover); the "
                                            "source is only read; OUT_DIR must not exist and appears complete or "
                                            "not at all.")
    p.add_argument("--format", required=True, choices=("occ3d", "uniocc"))
    p.add_argument("sessions_dir", metavar="SESSIONS_DIR")
    p.add_argument("out_dir", metavar="OUT_DIR")
    p.add_argument("--i2world-root", default=None, metavar="DIR",
                   help="occ3d only: the folder I2-World will find this export at, written into occ_path and "
                        "lidar_path (I2-World opens them as written; default: ./data/nuscenes, its configs' "
                        "data_root)")
    p.add_argument("--lidar", action="store_true",
                   help="occ3d only: also write the lidar as samples/LIDAR_TOP/<token>.pcd.bin (lidar_path; about "
                        "1.2 MB a frame, read by no consumer's occupancy training)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from occworld_tokyo.export.occ3d import export_occ3d
    from occworld_tokyo.export.uniocc import export_uniocc

    if (args.i2world_root is not None or args.lidar) and args.format != "occ3d":
        print("error: --i2world-root and --lidar belong to --format occ3d (the uniocc export has no I2-World "
              "paths)", file=sys.stderr)
        return 2
    try:
        if args.format == "occ3d":
            kwargs = {"lidar": args.lidar} if args.i2world_root is None else {"i2world_root": args.i2world_root,
                                                                              "lidar": args.lidar}
            report = export_occ3d(args.sessions_dir, args.out_dir, progress=not args.quiet, **kwargs)
        else:
            report = export_uniocc(args.sessions_dir, args.out_dir, progress=not args.quiet)
    except (UserError, OSError) as exc:  # ExportError, DataError: the file and the fix are named
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report.summary())
    return 0 if report.scenes else 1
