"""`occworld-tokyo index --input ... [--cache DIR] [--workers N]`: parse PLATEAU inputs into the tile cache (once;
later runs and every shard of a cluster job then read the cache) and print the places and tiles found."""

from __future__ import annotations

import sys

from occworld_tokyo.flags import OneLineParser, ranged

from .cache import default_cache_dir
from .errors import CityModelError


def build_parser() -> OneLineParser:
    p = OneLineParser(prog="occworld-tokyo index", description=__doc__)
    p.add_argument("--input", nargs="+", required=True, help="PLATEAU .zip, udx/ folders, .gml / .obj files")
    p.add_argument("--cache", default=None, help=f"tile cache folder (default: {default_cache_dir()})")
    p.add_argument("--workers", type=ranged(int, 1, 256), default=1, help="parsing processes (default: %(default)s)")
    p.add_argument("--strict", action="store_true", help="stop at the first unreadable file instead of skipping it")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .index import build_index

    try:
        idx = build_index(args.input, cache_dir=args.cache, workers=args.workers, strict=args.strict,
                          progress=not args.quiet)
    except (CityModelError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(idx.summary())
    for place in idx.places:
        x0, y0, x1, y1 = place.bounds
        print(f"  place {place.id}: centre {place.origin.lat:.5f} N {place.origin.lon:.5f} E, "
              f"{(x1 - x0) / 1000:.2f} x {(y1 - y0) / 1000:.2f} km, {len(place.codes)} mesh tiles, "
              f"{sum(t.buildings for t in place.tiles)} buildings")
    return 0
