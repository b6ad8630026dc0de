"""City scale: parse + cache time, cached start-up, region world build, frames/s and peak RSS of every process
against city area, on sample cities of N x N 1 km mesh squares (`occworld-tokyo sample-city`).

    python benchmarks/bench_city.py [--sizes 1 2 4 8] [--sessions 4] [--frames 100] [--workers 2] [--root DIR]

For each size, in fresh processes (so that each peak RSS belongs to one phase):
  write   the sample city's CityGML (skipped when DIR/city_<N>km exists)
  parse   build_index into an empty cache with --workers processes (parse + triangulate + write tiles)
  startup build_index again (everything cached: hash the files, read the manifests)
  world   one session's region world (the default 800 m plan area + 64 m margin) from the cache
  gen     generate_sessions with all sensors and traffic, --workers processes, --sessions x --frames
plus `district`: the built-in 600 m sample district as one prepared world (mesh=/world=, the pre-issue-10 path).
Peak RSS: ru_maxrss of the phase's process and of its largest child. `uptime` is printed with each row:
the machine is shared, so compare rows measured under similar load.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # measure the checkout this script belongs to


def _rss() -> dict:
    return {"rss_self_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "rss_child_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def _load() -> str:
    return " ".join(os.getloadavg().__repr__().strip("()").split(", ")[:1])


def phase(name: str, size: int, root: Path, args) -> dict:
    from occworld_tokyo.citymodel.index import build_index

    city = root / f"city_{size}km" / "udx"
    cache = root / f"cache_{size}km"
    out: dict = {"phase": name, "size_km": size, "load_before": _load()}
    t = time.perf_counter()
    if name == "write":
        from occworld_tokyo.citymodel.sample_city import write_sample_city

        paths = write_sample_city(city.parent, size_km=size, progress=False)
        out["files"] = len(paths)
        out["mb"] = sum(p.stat().st_size for p in paths) / 1e6
    elif name in ("parse", "startup"):
        idx = build_index(city, cache_dir=cache, workers=args.workers, progress=False)
        out["parsed_now"] = idx.parsed_now
        out["tiles"] = len({t.code for t in idx.tiles})
        out["cache_mb"] = sum(f.stat().st_size for f in cache.rglob("*") if f.is_file()) / 1e6
    elif name == "world":
        from occworld_tokyo.sessions.regions import session_area
        from occworld_tokyo.world.region import build_region_world

        idx = build_index(city, cache_dir=cache, workers=1, progress=False)
        t = time.perf_counter()
        area = session_area(idx, {p.id: p.codes for p in idx.places}, 0, 0)
        rw = build_region_world(idx, idx.places[area.place], area.plan_area)
        out["world_shape"] = list(rw.world.objects.shape)
        out["world_mb"] = rw.world.objects.nbytes / 1e6
        out["objects"] = rw.mesh.n_objects
    elif name in ("gen", "district"):
        from occworld_tokyo.sessions.generate import GenerationSpec, generate_sessions

        dest = root / f"out_{name}_{size}km"
        shutil.rmtree(dest, ignore_errors=True)
        spec = GenerationSpec(frames=args.frames, sessions=args.sessions, seed=0)
        if name == "district":
            from occworld_tokyo.citymodel.sample_city import load_sample_city
            from occworld_tokyo.world import build_voxel_world

            mesh = load_sample_city()
            world = build_voxel_world(mesh, progress=False)
            t = time.perf_counter()
            rep = generate_sessions(dest, spec=spec, workers=args.workers, progress=False, mesh=mesh, world=world)
        else:
            rep = generate_sessions(dest, [str(city)], spec=spec, workers=args.workers, progress=False,
                                    cache_dir=cache)
        out["frames"] = rep.frames_written
        out["fps"] = rep.frames_written / (time.perf_counter() - t)
        out["out_mb"] = sum(f.stat().st_size for f in dest.rglob("*") if f.is_file()) / 1e6
        shutil.rmtree(dest, ignore_errors=True)
    out["seconds"] = time.perf_counter() - t
    out.update(_rss())
    out["load_after"] = _load()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--sessions", type=int, default=4)
    p.add_argument("--frames", type=int, default=100)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--root", type=Path, default=Path("/tmp/occworld_bench_city"))
    p.add_argument("--phases", nargs="+", default=["write", "parse", "startup", "world", "gen"])
    p.add_argument("--district", action="store_true", help="also the pre-issue-10 baseline on the 600 m district")
    p.add_argument("--one", nargs=2, metavar=("PHASE", "SIZE"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        print(json.dumps(phase(args.one[0], int(args.one[1]), args.root, args)))
        return
    args.root.mkdir(parents=True, exist_ok=True)
    runs = [("district", 0)] if args.district else []
    for size in args.sizes:
        for ph in args.phases:
            if ph == "write" and (args.root / f"city_{size}km" / "udx").exists():
                continue
            if ph == "parse":
                shutil.rmtree(args.root / f"cache_{size}km", ignore_errors=True)
            runs.append((ph, size))
    for ph, size in runs:
        cmd = [sys.executable, __file__, "--one", ph, str(size), "--root", str(args.root), "--workers",
               str(args.workers), "--sessions", str(args.sessions), "--frames", str(args.frames)]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode:
            print(json.dumps({"phase": ph, "size_km": size, "error": res.stderr[-2000:]}), flush=True)
            continue
        print(res.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
