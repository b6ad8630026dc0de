"""Timing of the evaluation code on full-size grids (docs/benchmarks.md, "Evaluation").

python benchmarks/bench_eval.py [--repeats N]
A synthetic 6-step rollout of 200 x 200 x 121 grids: road at level 1, ~60 buildings, 40 moving objects;
the "forecast" is the ground truth with every other x slice of every 7th y column cleared.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from occworld_tokyo.evaluation import (
    OccupancyMetrics, PlanningMetrics, VPQMetric, copy_last_frame, ego_warp,
)
from occworld_tokyo.grid import EgoFrame
from occworld_tokyo.reports.figures import bev_image, side_view


def rollout(T: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    shape = (T, 200, 200, 121)
    gt = np.zeros(shape, np.uint8)
    inst = np.zeros(shape, np.int32)
    gt[..., 1] = 2
    for _ in range(60):
        x, y = rng.integers(0, 180, 2)
        gt[:, x:x + 20, y:y + 20, 1:rng.integers(4, 60)] = 1
    for k in range(40):
        x, y = rng.integers(10, 170, 2)
        c = (11, 12, 13)[k % 3]
        z = 2 if c != 13 else 30
        for t in range(T):
            xx = x + 3 * t
            gt[t, xx:xx + 8, y:y + 4, z:z + 2] = c
            inst[t, xx:xx + 8, y:y + 4, z:z + 2] = k + 1
    pred = gt.copy()
    pred[:, ::2, ::7] = 0
    return pred, gt, inst


def median_time(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    pred, gt, inst = rollout()
    occ_frac = float((gt != 0).mean())
    # a camera-like visibility mask: the 90 deg wedge ahead of the agent, all heights (coherent, like mask_camera)
    xs = np.arange(200)[:, None] - 99.5
    ys = np.arange(200)[None, :] - 99.5
    wedge = (xs > 0) & (np.abs(ys) < xs)
    mask = np.broadcast_to(wedge[None, :, :, None], gt.shape).copy()
    random_mask = np.random.default_rng(1).random(gt.shape) < 0.6
    om = OccupancyMetrics()
    rows = [
        ("OccupancyMetrics.update, numpy uint8 (1, 6, 200, 200, 121)", lambda: om.update(pred[None], gt[None])),
        ("  same, torch CPU int64 tensors", (lambda p=torch.from_numpy(pred[None]).long(),
                                              g=torch.from_numpy(gt[None]).long(): om.update(p, g))),
        ("  same, with a camera-wedge bool mask (25 % kept)", lambda: om.update(pred[None], gt[None], mask[None])),
        ("  same, with a random bool mask (60 % kept, worst case)",
         lambda: om.update(pred[None], gt[None], random_mask[None])),
        ("VPQMetric.update, one 6-step rollout, 40 objects", lambda: VPQMetric().update(pred, gt, inst)),
        ("copy_last_frame, 6 future frames", lambda: copy_last_frame(gt[None, :4], 6)),
        ("ego_warp, 6 future frames", lambda: ego_warp(gt[0], EgoFrame(0, 0, 0, 0),
                                                       [EgoFrame(2.0 * t, 0.3 * t, 0.05 * t, 1.25 * (t % 2))
                                                        for t in range(1, 7)])),
        ("PlanningMetrics.update with collision, batch 1 x 6 steps",
         lambda: PlanningMetrics().update(np.cumsum(np.full((1, 6, 2), 1.0), 1), np.cumsum(np.full((1, 6, 2), 1.1), 1),
                                          gt[None])),
        ("bev_image (200, 200, 121)", lambda: bev_image(gt[0])),
        ("side_view (200, 200, 121)", lambda: side_view(gt[0])),
    ]
    print(f"occupied fraction {occ_frac:.3f}; median of {args.repeats} runs; torch threads {torch.get_num_threads()}")
    for name, fn in rows:
        print(f"| {name} | {median_time(fn, args.repeats) * 1000:.1f} ms |")


if __name__ == "__main__":
    main()
