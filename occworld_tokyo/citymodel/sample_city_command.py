"""`occworld-tokyo sample-city --size-km N --out DIR`: the sample district's street grid over N x N 1 km mesh
squares, written as PLATEAU CityGML files (udx/<type>/<mesh>_<type>_6697_op.gml), for tests and benchmarks
of whole wards without downloads."""

from __future__ import annotations

import sys
from pathlib import Path

from occworld_tokyo.flags import OneLineParser, ranged, seed

from .sample_city import MAX_CITY_KM, write_sample_city

BYTES_PER_TILE = 10_000_000  # measured 8.3 MB of CityGML per 1 km square (docs/benchmarks.md), rounded up


def build_parser() -> OneLineParser:
    p = OneLineParser(prog="occworld-tokyo sample-city", description=__doc__)
    p.add_argument("--size-km", type=ranged(int, 1, MAX_CITY_KM), required=True, help=f"squares per side, 1..{MAX_CITY_KM}")
    p.add_argument("--out", required=True, help="folder to write udx/ into (created; must not hold a udx/ already)")
    p.add_argument("--seed", type=seed, default=0, help="random seed (same seed and size: byte-identical files)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = Path(args.out)
    try:
        if (out / "udx").exists():
            raise ValueError(f"{out / 'udx'} already exists; nothing was written. Fix: choose a new --out folder "
                             "or delete it")
        from .index import check_disk_space

        check_disk_space(out, BYTES_PER_TILE * args.size_km ** 2, f"a {args.size_km} x {args.size_km} km sample city")
        paths = write_sample_city(out, size_km=args.size_km, seed=args.seed, progress=not args.quiet)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    size = sum(q.stat().st_size for q in paths)
    print(f"{len(paths)} files, {size / 1e6:.1f} MB -> {out / 'udx'}")
    return 0
