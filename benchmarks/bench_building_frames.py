"""How many frames show buildings: the share of generated frames whose occupancy grid holds any building voxel.

    python benchmarks/bench_building_frames.py --input ../shared/data/plateau --sessions 12 --frames 20

Generates occupancy-only sessions (no sensors, no traffic: the question is where the sessions go) into a
temporary folder and counts, per session and overall, the frames with at least one building voxel, and the
mean share of building voxels among occupied ones. `--region` / `--region-size` as for `generate`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # measure the checkout this script belongs to

from occworld_tokyo import labels as L  # noqa: E402
from occworld_tokyo.agents import TrafficDensity  # noqa: E402
from occworld_tokyo.sessions.generate import GenerationSpec, generate_sessions  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", nargs="+", required=True)
    p.add_argument("--sessions", type=int, default=12)
    p.add_argument("--frames", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--region", default=None)
    p.add_argument("--region-size", type=float, default=800.0)
    p.add_argument("--cache", default=None)
    args = p.parse_args()
    spec = GenerationSpec(frames=args.frames, sessions=args.sessions, seed=args.seed, sensors=False,
                          density=TrafficDensity.none(), region=args.region, region_size=args.region_size)
    with tempfile.TemporaryDirectory() as tmp:
        generate_sessions(Path(tmp) / "out", args.input, spec=spec, workers=args.workers, progress=False,
                          cache_dir=args.cache)
        total = seen = 0
        for session in sorted((Path(tmp) / "out").iterdir()):
            meta = json.loads((session / "meta.json").read_text())
            flags = []
            for f in sorted((session / "occupancy").glob("*_occupancy.npz")):
                with np.load(f) as z:
                    flags.append(bool((z[z.files[0]] == L.BUILDING).any()))
            total += len(flags)
            seen += sum(flags)
            print(f"{session.name}: place {meta['city']['region']['place']} tile {meta['city']['region']['tile_drawn']} "
                  f"{sum(flags)}/{len(flags)} frames with buildings")
    print(f"overall: {seen}/{total} frames with buildings ({100 * seen / max(total, 1):.0f} %)")


if __name__ == "__main__":
    main()
