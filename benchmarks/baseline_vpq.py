"""VPQ of the copy-last-frame and ego-warp baselines on generated sessions, full stored grid (docs/metrics.md,
"What VPQ to expect").

python benchmarks/baseline_vpq.py DATA_ROOT [--history 2] [--future 6] [--stride 4]
For every session, windows every `stride` frames: the last history frame is the baselines' input, the next
`future` frames are the ground truth (stored instance ids); VPQ per agent type, method and IoU threshold (0.5 =
FIERY, 0.2 = Cam4DOcc's 3D setting), class mean and per class.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from occworld_tokyo.dataset.poses import ego_frames, pose_arrays
from occworld_tokyo.dataset.sessions import find_sessions, read_occupancy, read_pose
from occworld_tokyo.evaluation import VPQMetric, copy_last_frame, ego_warp, threshold_key

THRESHOLDS = (0.5, 0.2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data_root", type=Path)
    ap.add_argument("--history", type=int, default=2)
    ap.add_argument("--future", type=int, default=6)
    ap.add_argument("--stride", type=int, default=4)
    args = ap.parse_args()
    H, F = args.history, args.future
    sessions = find_sessions(args.data_root)
    print(f"{len(sessions)} sessions in {args.data_root}; {H} history + {F} future frames, windows every "
          f"{args.stride} frames")
    print(f"{'agent':6s} {'windows':>7s} {'method':10s} {'IoU thr':>7s} {'VPQ':>6s}  per class")
    for kind in ("rover", "drone"):
        metrics = {m: VPQMetric(n_steps=F, iou_threshold=THRESHOLDS) for m in ("copy_last", "ego_warp")}
        windows = 0
        for s in (s for s in sessions if s.agent_type == kind):
            grids = [read_occupancy(s.path, i, ("occupancy", "instances")) for i in range(s.n_frames)]
            labels = np.stack([g["occupancy"] for g in grids])
            ids = np.stack([g["instances"] for g in grids])
            frames = ego_frames(pose_arrays([read_pose(s.path, i) for i in range(s.n_frames)]))
            for t0 in range(0, s.n_frames - H - F + 1, args.stride):
                now, fut = t0 + H - 1, slice(t0 + H, t0 + H + F)
                preds = {"copy_last": copy_last_frame(labels[now][None], F),
                         "ego_warp": ego_warp(labels[now], frames[now], frames[fut])}
                for method, metric in metrics.items():
                    metric.update(preds[method], labels[fut], ids[fut], frames=frames[fut])
                windows += 1
        for (method, metric), thr in ((item, t) for item in metrics.items() for t in THRESHOLDS):
            r = metric.compute()["by_threshold"][threshold_key(thr)]
            per = ", ".join(f"{c} {v:.3f}" if v is not None else f"{c} n/a" for c, v in r["vpq_per_class"].items())
            vpq = "n/a" if r["vpq"] is None else f"{r['vpq']:.3f}"
            print(f"{kind:6s} {windows:7d} {method:10s} {thr:7.1f} {vpq:>6s}  {per}", flush=True)


if __name__ == "__main__":
    main()
