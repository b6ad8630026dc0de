"""Benchmark the per-frame sensor work: lidar scan, camera render, both visibility masks, JPEG encode.

Usage:
    python benchmarks/bench_sensors.py [--city real|sample|synthetic] [--frames 8] [--json out.json]

`real` reads the western-Tokyo PLATEAU tile (../shared/data/plateau/53395404_bldg_6697_op.gml), `sample`
the built-in sample district, `synthetic` a random city of 1500 boxes. The voxel world (when importable)
supplies the ground under buildings-only tiles and the ego frames. Runs single-threaded in one process,
so the figures are per core; everything is timed after a warm-up frame (the JIT compile / cache load of
the numba kernels is timed separately on the first call).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from occworld_tokyo.grid import DEFAULT_GRID, EgoFrame  # noqa: E402
from occworld_tokyo.sensors import (RayCaster, camera_mask, default_camera, default_lidar, encode_jpeg,  # noqa: E402
                                    lidar_mask, render_camera, scan_lidar)
from occworld_tokyo.sensors.scene import sensor_mesh  # noqa: E402
from occworld_tokyo.sensors.synthetic import random_box_city  # noqa: E402

REAL_TILE = REPO.parent / "shared" / "data" / "plateau" / "53395404_bldg_6697_op.gml"


def load(city: str):
    if city == "real":
        from occworld_tokyo.citymodel import load_city
        return load_city(str(REAL_TILE), progress=False)
    if city == "sample":
        from occworld_tokyo.citymodel.sample_city import load_sample_city
        return load_sample_city(seed=0)
    return random_box_city(1500, seed=0)


def build_world(mesh):
    try:
        from occworld_tokyo.world import build_voxel_world
    except ImportError:
        return None
    return build_voxel_world(mesh, progress=False)


def yaw_quat(yaw: float) -> np.ndarray:
    return np.array([0.0, 0.0, np.sin(yaw / 2), np.cos(yaw / 2)])


def poses(world, mesh, agent: str, n: int, rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray, EgoFrame]]:
    """n poses: rovers 1.2 m above open ground (no building in the column), drones 30-120 m above ground."""
    lo, hi = mesh.bounds()
    out: list = []
    for attempt in range(200_000):
        if len(out) == n:
            break
        strict = attempt < 100_000  # give up on open ground / clearance in a city with hardly any
        x, y = rng.uniform(lo[0] + 40, hi[0] - 40), rng.uniform(lo[1] + 40, hi[1] - 40)
        yaw = float(rng.uniform(-np.pi, np.pi))
        if world is not None:
            g = float(world.ground_height(x, y))
            if strict and agent == "rover" and float(world.surface_height(x, y)) > g + 0.5:
                continue
            frame = world.ego_frame(x, y, yaw)
        else:
            g = float(lo[2])
            frame = EgoFrame(x, y, yaw, g)
        z = g + (1.2 if agent == "rover" else float(rng.choice([30.0, 60.0, 120.0])))
        if strict and world is not None and agent == "drone" and float(world.surface_height(x, y)) > z - 5:
            continue
        out.append((np.array([x, y, z]), yaw_quat(yaw), frame))
    return out


def frame_timings(caster, mesh, pose, agent: str, rng) -> dict[str, float]:
    pos, q, frame = pose
    t = {}
    t0 = time.perf_counter()
    scan = scan_lidar(caster, mesh, pos, q, frame, default_lidar(agent), rng)
    t["lidar_scan"] = time.perf_counter() - t0
    cam_spec = default_camera(agent)
    t0 = time.perf_counter()
    cam = render_camera(caster, mesh, pos, q, cam_spec)
    t["camera_render"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    ml = lidar_mask(scan.origin_ego, scan.points[:, :3], DEFAULT_GRID)
    t["lidar_mask"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    mc = camera_mask(cam.depth, pos, q, frame, cam_spec, DEFAULT_GRID)
    t["camera_mask"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    jpg = encode_jpeg(cam.rgb, 90)
    t["jpeg_encode"] = time.perf_counter() - t0
    t["total"] = sum(t.values())
    t["points"] = len(scan)
    t["sky_fraction"] = float(np.isinf(cam.depth).mean())
    t["mask_lidar_fraction"] = float(ml.mean())
    t["mask_camera_fraction"] = float(mc.mean())
    t["jpeg_kib"] = len(jpg) / 1024
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--city", choices=["real", "sample", "synthetic"], default="real")
    ap.add_argument("--frames", type=int, default=8, help="timed frames per agent type")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--save-example", type=Path, default=None, help="write one rendered frame per agent (jpg)")
    args = ap.parse_args()

    t0 = time.perf_counter()
    import numba  # noqa: F401  (import cost counted apart from the JIT)
    from occworld_tokyo.sensors import visibility
    t_import = time.perf_counter() - t0
    # first calls: numba compile, or load from the on-disk cache when it is warm
    t0 = time.perf_counter()
    lidar_mask(np.zeros(3), np.ones((1, 3)), DEFAULT_GRID)
    t_jit_lidar = time.perf_counter() - t0
    spec = default_camera("rover")
    t0 = time.perf_counter()
    camera_mask(np.full((spec.height, spec.width), np.inf, np.float32), np.zeros(3), yaw_quat(0.0),
                EgoFrame(0, 0, 0, 0), spec, DEFAULT_GRID)
    t_jit_camera = time.perf_counter() - t0

    t0 = time.perf_counter()
    mesh = load(args.city)
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    world = build_world(mesh)
    t_world = time.perf_counter() - t0
    smesh = sensor_mesh(mesh, world)
    caster = RayCaster(smesh)

    rng = np.random.default_rng(0)
    result = {
        "city": args.city, "triangles_city": mesh.n_triangles, "triangles_sensors": smesh.n_triangles,
        "machine": f"{platform.processor() or platform.machine()}, {platform.python_version()}",
        "load_s": t_load, "voxel_world_s": t_world, "embree_build_s": caster.build_seconds,
        "numba_import_s": t_import, "first_call_lidar_mask_s": t_jit_lidar,
        "first_call_camera_mask_s": t_jit_camera,
        "numba_cache": str(Path(visibility.__file__).parent / "__pycache__"),
        "agents": {},
    }
    for agent in ("rover", "drone"):
        ps = poses(world, mesh, agent, args.frames + 1, rng)
        frame_timings(caster, smesh, ps[0], agent, rng)  # warm-up
        rows = [frame_timings(caster, smesh, p, agent, rng) for p in ps[1:]]
        result["agents"][agent] = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        result["agents"][agent]["rays_lidar"] = default_lidar(agent).n_rays
        if args.save_example:
            pos, q, frame = ps[1]
            args.save_example.mkdir(parents=True, exist_ok=True)
            cam = render_camera(caster, smesh, pos, q, default_camera(agent))
            (args.save_example / f"{args.city}_{agent}_CAM_FRONT.jpg").write_bytes(encode_jpeg(cam.rgb))
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(f"city {args.city}: {mesh.n_triangles} triangles ({smesh.n_triangles} with ground), load {t_load:.2f} s, "
          f"voxel world {t_world:.2f} s, Embree build {caster.build_seconds * 1e3:.1f} ms")
    print(f"numba first calls: lidar_mask {t_jit_lidar:.2f} s, camera_mask {t_jit_camera:.2f} s")
    keys = ["lidar_scan", "camera_render", "lidar_mask", "camera_mask", "jpeg_encode", "total"]
    print("| agent | " + " | ".join(keys) + " | frames/s/core | points | sky | mask_lidar | mask_camera |")
    print("|---" * (len(keys) + 6) + "|")
    for agent, r in result["agents"].items():
        cells = " | ".join(f"{r[k] * 1e3:.0f} ms" for k in keys)
        print(f"| {agent} | {cells} | {1.0 / r['total']:.2f} | {r['points']:.0f} / {r['rays_lidar']} | "
              f"{r['sky_fraction']:.0%} | {r['mask_lidar_fraction']:.2%} | {r['mask_camera_fraction']:.2%} |")
    print(f"peak RSS {result['peak_rss_mib']:.0f} MiB")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
