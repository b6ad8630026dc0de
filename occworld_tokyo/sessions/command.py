"""`python scripts/plateau_to_occworld.py` / `occworld-tokyo generate`: PLATEAU city model -> sessions."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path

from occworld_tokyo.agents import TrafficDensity
from occworld_tokyo.errors import UserError
from occworld_tokyo.flags import OneLineParser, ranged as _ranged, region as _region, seed as _seed, shard as _shard
from occworld_tokyo.sessions.generate import GenerationError, GenerationSpec, generate_sessions
from occworld_tokyo.sessions.regions import DEFAULT_REGION_SIZE, MAX_REGION_SIZE, MIN_REGION_SIZE


def _start_time(text: str) -> str:
    try:
        datetime.strptime(text, "%Y%m%d_%H%M%S")
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} must look like 20240101_120000 (YYYYmmdd_HHMMSS)") from None
    return text


def build_parser() -> OneLineParser:
    p = OneLineParser(
        prog="plateau_to_occworld.py",
        description="Turn PLATEAU 3D city models into drone/rover sessions of occupancy, poses, lidar and camera images.")
    p.add_argument("--input", nargs="+", default=None,
                   help="PLATEAU CityGML (.gml, a udx/ folder, the distributed .zip) or OBJ export folder(s); "
                        "omit to use the built-in sample district")
    p.add_argument("--output", default="data/tokyo_gazebo", help="data root to write sessions into (default: %(default)s)")
    p.add_argument("--frames", type=_ranged(int, 1, 100_000), default=200, help="frames per session (default: %(default)s)")
    p.add_argument("--sessions", type=_ranged(int, 1, 10_000), default=5, help="number of sessions (default: %(default)s)")
    p.add_argument("--agent", choices=("drone", "rover", "mixed"), default="mixed",
                   help="agent type of the sessions; mixed alternates drone and rover (default: %(default)s)")
    p.add_argument("--seed", type=_seed, default=0, help="random seed: the same seed gives byte-identical output")
    p.add_argument("--rate", type=_ranged(float, 0.1, 100.0, " Hz"), default=2.0, help="frame rate in Hz (default: %(default)s, OccWorld's keyframe rate)")
    p.add_argument("--workers", type=_ranged(int, 1, 256), default=1, help="worker processes over sessions (default: %(default)s)")
    p.add_argument("--shard", type=_shard, default=(0, 1), metavar="i/n",
                   help="write only sessions k with k %% n == i (cluster array jobs; default 0/1)")
    p.add_argument("--region", type=_region, default=None, metavar="CODES|BOX",
                   help="sample sessions only here: comma-separated JIS mesh codes (4/6/8 digits, prefixes match) or "
                        "a box lat_min,lon_min,lat_max,lon_max in degrees (default: the whole input)")
    p.add_argument("--region-size", type=_ranged(float, MIN_REGION_SIZE, MAX_REGION_SIZE, " m"), default=DEFAULT_REGION_SIZE,
                   metavar="M",
                   help="side of each session's area in metres; memory per worker grows with its square "
                        "(about 1.6 GB per km^2 of area + 64 m margin; default: %(default)s)")
    p.add_argument("--cache", default=None, metavar="DIR",
                   help="city tile cache folder (default: $OCCWORLD_TOKYO_CACHE or ~/.cache/occworld_tokyo/city)")
    p.add_argument("--no-sensors", action="store_true",
                   help="occupancy and poses only (no lidar, camera or visibility masks): much faster")
    d = TrafficDensity()
    p.add_argument("--vehicles", type=_ranged(float, 0.0, 5_000.0, " per km^2"), default=d.vehicles_per_km2,
                   help="moving vehicles per km^2 (cars, vans, buses, trucks on the streets; default: %(default)s)")
    p.add_argument("--pedestrians", type=_ranged(float, 0.0, 50_000.0, " per km^2"), default=d.pedestrians_per_km2,
                   help="pedestrians per km^2 (default: %(default)s)")
    p.add_argument("--drones", type=_ranged(float, 0.0, 5_000.0, " per km^2"), default=d.drones_per_km2,
                   help="other drones per km^2 flying at altitude (default: %(default)s)")
    p.add_argument("--static", action="store_true", help="a city without moving agents")
    p.add_argument("--grid", choices=("default", "occ3d"), default="default",
                   help="default: 200x200x121 at 0.4x0.4x1.25 m, -2..149 m above ground (the guide's grid); occ3d: "
                        "200x200x16 at 0.4 m, -1.0..5.4 m (Occ3D-nuScenes, what released OccWorld reads), voxelized "
                        "from the geometry at 0.4 m (default: %(default)s)")
    p.add_argument("--start-time", type=_start_time, default="20240101_120000",
                   help="synthetic recording clock used in session names (default: %(default)s)")
    p.add_argument("--strict", action="store_true",
                   help="stop at the first unreadable input file instead of skipping it, and end with exit 2 when "
                        "the sessions miss a content kind of the input (the coverage WARNINGs; sessions written are "
                        "kept)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        spec = GenerationSpec(frames=args.frames, sessions=args.sessions, agent=args.agent, seed=args.seed,
                              rate_hz=args.rate, sensors=not args.no_sensors, start_time=args.start_time,
                              shard=args.shard, grid=args.grid, region=args.region, region_size=args.region_size,
                              density=TrafficDensity.none() if args.static else
                              TrafficDensity(args.vehicles, args.pedestrians, args.drones))
        if args.input:
            for item in args.input:
                if not Path(item).exists():
                    raise GenerationError(
                        f"--input {item} does not exist. Download PLATEAU data for your area (see docs/plateau_input.md) "
                        "and point --input at the .zip, its udx/ folder or .gml files; omit --input to use the "
                        "built-in sample district")
        report = generate_sessions(args.output, args.input, spec=spec, workers=args.workers,
                                   strict=args.strict, progress=not args.quiet, cache_dir=args.cache)
    except (UserError, ValueError, OSError) as exc:  # CityModelError and bad densities are ValueErrors
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report.summary())
    return 0
