"""Whole-pipeline generation speed: frames/s and where the time goes, on the real western-Tokyo tile and
the built-in sample district.

    python benchmarks/bench_generate.py [--frames 40] [--workers 2]

Measures (1) occupancy + pose only (no sensors) on one core, (2) everything (lidar, camera, both masks,
files) on one core with a per-stage breakdown, (3) everything through `generate_sessions` with N worker
processes, wall clock. Peak RSS of the process (and of the workers) is reported.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from occworld_tokyo.citymodel import load_city
from occworld_tokyo.citymodel.sample_city import load_sample_city
from occworld_tokyo.grid import DEFAULT_GRID
from occworld_tokyo.sensors import (RayCaster, camera_mask, default_camera, default_lidar, encode_jpeg, lidar_mask,
                                    render_camera, scan_lidar)
from occworld_tokyo.sensors.scene import sensor_mesh
from occworld_tokyo.sessions import writer
from occworld_tokyo.sessions.generate import GenerationSpec, generate_sessions, plan_trajectory
from occworld_tokyo.world import build_voxel_world

REAL_TILE = Path(__file__).resolve().parents[2] / "shared" / "data" / "plateau" / "53395404_bldg_6697_op.gml"


def peak_rss_mb() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, children


def per_stage(mesh, world, agent: str, frames: int, sensors: bool, out: Path) -> dict[str, float]:
    """Seconds per frame of each stage on one core (after one warm-up frame for numba JIT)."""
    rng = np.random.default_rng(0)
    traj = plan_trajectory(world, agent, frames + 1, 2.0, rng)
    times: dict[str, float] = defaultdict(float)
    smesh = sensor_mesh(mesh, world)
    caster = RayCaster(smesh) if sensors else None
    lspec, cspec = default_lidar(agent), default_camera(agent)
    tmp = writer.make_session_tmp(out, f"{agent}_bench")
    for i in range(frames + 1):
        stamp = {}
        t = time.perf_counter()
        pos, quat = traj.position[i], traj.quat_xyzw[i]
        frame = world.ego_frame(float(pos[0]), float(pos[1]), float(traj.yaw[i]))
        occ, inst = world.crop(frame, DEFAULT_GRID)
        stamp["crop"] = time.perf_counter() - t
        data = writer.FrameData(occupancy=occ, instances=inst, ground_height=frame.ground_z)
        if sensors:
            t = time.perf_counter()
            scan = scan_lidar(caster, smesh, pos, quat, frame, lspec, rng)
            stamp["lidar"] = time.perf_counter() - t
            t = time.perf_counter()
            cam = render_camera(caster, smesh, pos, quat, cspec)
            stamp["camera"] = time.perf_counter() - t
            t = time.perf_counter()
            data.mask_lidar = lidar_mask(scan.origin_ego, scan.points[:, :3], DEFAULT_GRID,
                                         miss_dirs_ego=scan.miss_dirs_ego, max_range=lspec.max_range)
            stamp["mask_lidar"] = time.perf_counter() - t
            t = time.perf_counter()
            data.mask_camera = camera_mask(cam.depth, pos, quat, frame, cspec, DEFAULT_GRID)
            stamp["mask_camera"] = time.perf_counter() - t
            t = time.perf_counter()
            data.image_jpeg = encode_jpeg(cam.rgb)
            data.lidar = scan.points
            stamp["jpeg"] = time.perf_counter() - t
        t = time.perf_counter()
        writer.write_frame(tmp, i, traj, data)
        stamp["write"] = time.perf_counter() - t
        if i > 0:  # frame 0 warms numba up
            for k, v in stamp.items():
                times[k] += v / frames
    return dict(times)


def run(name: str, mesh, frames: int, workers: int) -> list[str]:
    lines = [f"### {name}", ""]
    t = time.perf_counter()
    world = build_voxel_world(mesh, progress=False)
    lines.append(f"voxel world build: {time.perf_counter() - t:.2f} s, objects grid {world.objects.shape} "
                 f"{world.objects.dtype}, {world.objects.nbytes / 2**20:.0f} MiB")
    with tempfile.TemporaryDirectory() as d:
        for agent in ("drone", "rover"):
            occ_only = per_stage(mesh, world, agent, frames, False, Path(d))
            full = per_stage(mesh, world, agent, frames, True, Path(d))
            fps_occ = 1.0 / sum(occ_only.values())
            fps_full = 1.0 / sum(full.values())
            lines.append(f"- {agent}: occupancy + pose only **{fps_occ:.1f} frames/s per core** "
                         f"({', '.join(f'{k} {1000 * v:.1f} ms' for k, v in occ_only.items())})")
            lines.append(f"- {agent}: everything **{fps_full:.2f} frames/s per core** "
                         f"({', '.join(f'{k} {1000 * v:.0f} ms' for k, v in full.items())})")
        out = Path(d) / "sessions"
        spec = GenerationSpec(frames=frames, sessions=2 * workers, agent="mixed", sensors=True)
        report = generate_sessions(out, spec=spec, workers=workers, progress=False, mesh=mesh, world=world)
        lines.append(f"- generate_sessions, everything, {workers} worker processes, {report.frames_written} frames "
                     f"(drone and rover, JIT warm-up and session set-up included): "
                     f"**{report.frames_written / report.seconds:.2f} frames/s** wall clock")
    own, children = peak_rss_mb()
    lines.append(f"- peak RSS: main process {own:.0f} MiB, largest worker {children:.0f} MiB")
    return lines + [""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    lines = []
    if REAL_TILE.is_file():
        lines += run("Real western-Tokyo tile (53395404, 657 buildings, no dem)", load_city(REAL_TILE, progress=False),
                     args.frames, args.workers)
    lines += run("Built-in sample district (600 m, seed 0)", load_sample_city(), args.frames, args.workers)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
