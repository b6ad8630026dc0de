"""Benchmark: voxel-world build time, peak memory and ego-crop time.

Cases: the real western-Tokyo PLATEAU tile (../shared/data/plateau/53395404_bldg_6697_op.gml, 657 LOD1
buildings) and a 1 km x 1 km district (the built-in sample district `load_sample_city(size_m=1000)` when it
exists, else a synthetic 1 km grid of box buildings and road quads). Each case runs in its own Python
process so that its peak RSS (resource.getrusage ru_maxrss) is its own.

    python benchmarks/bench_world.py [--repeat 3] [--frames 50] [--engine numba|numpy|both]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TILE = ROOT / ".." / "shared" / "data" / "plateau" / "53395404_bldg_6697_op.gml"


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def load_case(name: str):
    if name == "tokyo_west":
        from occworld_tokyo.citymodel import load_city

        return load_city(TILE, progress=False), str(TILE.name)
    try:
        from occworld_tokyo.citymodel.sample_city import load_sample_city

        return load_sample_city(seed=0, size_m=1000.0), "load_sample_city(size_m=1000)"
    except ImportError:
        from occworld_tokyo.world.primitives import box_grid_city

        return box_grid_city(size_m=1000.0), "synthetic 1 km box grid (primitives.box_grid_city)"


def run_case(name: str, engine: str, repeat: int, frames: int) -> dict:
    from occworld_tokyo.world import build_voxel_world

    t = time.perf_counter()
    mesh, source = load_case(name)
    load_s = time.perf_counter() - t
    rss_loaded = rss_mb()
    builds, stages = [], []
    for _ in range(repeat):
        t = time.perf_counter()
        world = build_voxel_world(mesh, progress=False, engine=engine)
        builds.append(time.perf_counter() - t)
        stages.append(world.timings)
        if _ < repeat - 1:
            del world
    rss_built = rss_mb()
    rng = np.random.default_rng(0)
    x0, y0, x1, y1 = world.bounds_xy
    crop_ms, frame_ms = [], []
    for x, y, yaw in rng.uniform([x0, y0, -np.pi], [x1, y1, np.pi], size=(frames, 3)):
        t = time.perf_counter()
        f = world.ego_frame(x, y, yaw)
        t1 = time.perf_counter()
        lab, ins = world.crop(f)
        t2 = time.perf_counter()
        crop_ms.append((t2 - t1) * 1e3)
        frame_ms.append((t2 - t) * 1e3)
    nx, ny, nz = world.objects.shape
    return dict(
        case=name, source=source, engine=engine, triangles=mesh.n_triangles, objects=mesh.n_objects,
        extent_m=[round(world.bounds_xy[2] - x0, 1), round(world.bounds_xy[3] - y0, 1)],
        shape=[nx, ny, nz], objects_mb=round(world.objects.nbytes / 2**20, 1),
        ground=[round(float(world.ground.min()), 2), round(float(world.ground.max()), 2)],
        load_s=round(load_s, 3), build_first_s=round(builds[0], 3),
        build_median_s=round(float(np.median(builds[1:] if len(builds) > 1 else builds)), 3),
        stages_first={k: round(v, 3) for k, v in stages[0].items()},
        stages_last={k: round(v, 3) for k, v in stages[-1].items()},
        rss_after_load_mb=round(rss_loaded, 0), peak_rss_mb=round(rss_built, 0),
        crop_median_ms=round(float(np.median(crop_ms)), 2), crop_p95_ms=round(float(np.percentile(crop_ms, 95)), 2),
        ego_frame_plus_crop_median_ms=round(float(np.median(frame_ms)), 2),
        occupied_fraction=round(float((lab != 0).mean()), 4),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--frames", type=int, default=50)
    ap.add_argument("--engine", default="numba", choices=["numba", "numpy", "both"])
    ap.add_argument("--case", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.engine, args.repeat, args.frames)))
        return
    engines = ["numba", "numpy"] if args.engine == "both" else [args.engine]
    cases = (["tokyo_west"] if TILE.exists() else []) + ["district_1km"]
    for case in cases:
        for engine in engines:
            out = subprocess.run([sys.executable, __file__, "--case", case, "--engine", engine,
                                  "--repeat", str(args.repeat), "--frames", str(args.frames)],
                                 capture_output=True, text=True, cwd=ROOT)
            if out.returncode:
                print(out.stderr, file=sys.stderr)
                raise SystemExit(out.returncode)
            print(json.dumps(json.loads(out.stdout.strip().splitlines()[-1]), indent=None))


if __name__ == "__main__":
    main()
