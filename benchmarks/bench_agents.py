"""Benchmark: moving agents on the sample district (default density).

Measures, median of --repeat runs: traffic simulation time per frame (after the per-world maps are
built and cached; their one-off build time is reported separately), and per frame of a drive through
the district: paint_agents, annotations and agent_mesh time, with the number of agents in the grid.

    python benchmarks/bench_agents.py [--frames 100] [--repeat 3] [--size 600]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from occworld_tokyo.agents import TrafficDensity, agent_mesh, annotations, paint_agents, simulate_traffic
from occworld_tokyo.citymodel.sample_city import load_sample_city
from occworld_tokyo.grid import DEFAULT_GRID
from occworld_tokyo.world import build_voxel_world


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--size", type=float, default=600.0)
    args = ap.parse_args()
    world = build_voxel_world(load_sample_city(seed=0, size_m=args.size))
    density = TrafficDensity()
    t = time.perf_counter()
    simulate_traffic(world, 1, 2.0, np.random.default_rng(0), density)
    first = time.perf_counter() - t
    sims, recs = [], []
    for r in range(args.repeat):
        t = time.perf_counter()
        rec = simulate_traffic(world, args.frames, 2.0, np.random.default_rng(r + 1), density)
        sims.append(time.perf_counter() - t)
        recs.append(rec)
    rec = recs[0]
    paint, ann, mesh, n_in = [], [], [], []
    for i in range(args.frames):  # a straight drive along the street y = 0
        frame = world.ego_frame(-200.0 + 3.0 * i, 0.0, 0.0)
        labels, inst = world.crop(frame)
        st = rec.at(i)
        t = time.perf_counter()
        paint_agents(labels, inst, frame, st, DEFAULT_GRID)
        paint.append(time.perf_counter() - t)
        t = time.perf_counter()
        boxes = annotations(st, frame, DEFAULT_GRID, occupancy_instances=inst)
        ann.append(time.perf_counter() - t)
        t = time.perf_counter()
        agent_mesh(st)
        mesh.append(time.perf_counter() - t)
        n_in.append(len(boxes))
    out = {
        "world_columns": list(world.objects.shape[:2]),
        "agents": rec.info,
        "maps_first_call_s": round(first, 3),
        "sim_ms_per_frame_median": round(1e3 * float(np.median(sims)) / args.frames, 2),
        "sim_ms_per_frame_all": [round(1e3 * s / args.frames, 2) for s in sims],
        "paint_ms_median": round(1e3 * float(np.median(paint)), 3),
        "paint_ms_p95": round(1e3 * float(np.percentile(paint, 95)), 3),
        "annotations_ms_median": round(1e3 * float(np.median(ann)), 3),
        "agent_mesh_ms_median": round(1e3 * float(np.median(mesh)), 3),
        "agents_in_grid_median": float(np.median(n_in)),
        "agents_in_grid_max": int(np.max(n_in)),
    }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
