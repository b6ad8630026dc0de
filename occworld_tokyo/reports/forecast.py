"""`occworld-tokyo forecast`: roll a trained world model out from any frame of a session.

    occworld-tokyo forecast --checkpoint checkpoints/best.pth --session data/tokyo_gazebo/drone_... \
        [--start N] --out forecast/

Frames start .. start + history - 1 are the history (start + history - 1 is the current frame); the model
predicts the next `future_frames`. Written under --out, in the data format:
    occupancy/NNNNNN_occupancy.npz   `occupancy` (the model's grid; see meta.json) for each predicted frame N
    poses/NNNNNN.json                the predicted pose in the world frame (pose JSON schema)
    meta.json                        checkpoint, session, frames, grid of the predictions
    forecast_bev.png, forecast_side.png   ground truth (top row) vs forecast (bottom row), when the session has them
    forecast.gif                     ground truth | forecast, history then future, bird's-eye view
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from occworld_tokyo.dataset.grid_select import select_grid
from occworld_tokyo.dataset.poses import poses_to_world
from occworld_tokyo.dataset.sessions import DataError, read_session
from occworld_tokyo.dataset.windows import OccWindowDataset, SessionPart
from occworld_tokyo.errors import UserError
from occworld_tokyo.grid import EgoFrame
from occworld_tokyo.reports.figures import bev_image, comparison_figure, side_by_side, write_gif
from occworld_tokyo.sessions import layout, writer


class ForecastError(UserError):
    """The forecast cannot run; the message says what to give instead."""


def load_trained(checkpoint: str | Path) -> tuple[torch.nn.Module, dict]:
    """The model and resolved config stored in a training checkpoint (world-model stage)."""
    from occworld_tokyo.model import build_model
    from occworld_tokyo.training.checkpoint import load_checkpoint
    from occworld_tokyo.training.stages import stage_for

    ckpt = load_checkpoint(checkpoint)
    if "config_json" not in ckpt:
        raise ForecastError(f"{checkpoint} carries no config (config_json); use a checkpoint written by train.py")
    cfg = json.loads(ckpt["config_json"])
    model = build_model(cfg["model"])
    stage = stage_for(model)
    if stage.name != "world_model":
        raise ForecastError(f"{checkpoint} is a {stage.name} checkpoint ({stage.model_type}); forecasting needs a "
                            "world-model checkpoint (stage 2, e.g. checkpoints/best.pth)")
    model.load_state_dict(ckpt["state_dict"])  # the config is the checkpoint's own: the shapes fit
    model.eval()
    return model, cfg


def forecast(model: torch.nn.Module, cfg: dict, session_dir: str | Path, start: int = 0) -> dict:
    """Roll out from frames start .. start + history - 1. Returns history, prediction, ground truth (if the
    session has the future frames, else None), predicted world poses and the frame indices."""
    info = read_session(Path(session_dir))
    H, F = model.history_frames, model.future_frames
    if not 0 <= start <= info.n_frames - H:
        raise ForecastError(f"--start {start}: the session has {info.n_frames} frames and the model needs {H} "
                            f"history frames, so --start must be in 0..{info.n_frames - H}")
    has_future = start + H + F <= info.n_frames
    selection = select_grid(cfg["point_cloud_range"], cfg["voxel_size"], stored=info.grid)
    part = SessionPart(info, start, start + (H + F if has_future else H))
    ds = OccWindowDataset([part], H, F if has_future else 0, selection)
    item = ds[0]
    occ, poses, ego = item["occ"].long(), item["poses"].float(), item["ego"].numpy()
    with torch.no_grad():
        out = model.rollout(occ[None, :H], poses[None, :H], F)
    cur = EgoFrame(*ego[H - 1, :4])
    world = poses_to_world(out["poses"][0].numpy(), cur, float(ego[H - 1, 4]))
    return {
        "history": occ[:H].numpy(), "pred": out["occ"][0].numpy().astype(np.uint8),
        "gt": occ[H:].numpy() if has_future else None, "poses": world,
        "frames": list(range(start + H, start + H + F)), "grid": selection.grid, "rate_hz": info.rate_hz,
        "session": info,
    }


def write_forecast(result: dict, out: Path, checkpoint: str) -> list[Path]:
    """Files of one forecast (module docstring). Returns the picture paths."""
    for sub in ("occupancy", "poses"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    p = result["poses"]
    for k, frame in enumerate(result["frames"]):
        layout.occupancy_path(out, frame).write_bytes(writer.npz_bytes({"occupancy": result["pred"][k]}))
        record = {
            "timestamp": frame / result["rate_hz"], "frame": frame, "agent_type": result["session"].agent_type,
            "position": dict(zip("xyz", map(float, p["position"][k]))),
            "orientation": dict(zip("xyzw", map(float, p["quat"][k]))),
            "velocity": {"linear": dict(zip("xyz", map(float, p["lin_vel"][k]))),
                         "angular": dict(zip("xyz", map(float, p["ang_vel"][k])))},
            "predicted": True,
        }
        writer.write_json(layout.pose_path(out, frame), record)
    writer.write_json(out / "meta.json", {
        "checkpoint": str(checkpoint), "session": str(result["session"].path), "frames": result["frames"],
        "grid": result["grid"].to_dict(), "note": "predicted occupancy on the model's grid (see grid)",
    })
    pictures = []
    gt, pred, hist = result["gt"], result["pred"], result["history"]
    steps = [f"+{(k + 1) / result['rate_hz']:.1f} s" for k in range(len(pred))]
    if gt is not None:
        pictures.append(comparison_figure(gt, pred, out / "forecast_bev.png", view="bev", titles=steps))
        pictures.append(comparison_figure(gt, pred, out / "forecast_side.png", view="side", titles=steps))
        frames = [side_by_side(h, h) for h in hist] + [side_by_side(g, q) for g, q in zip(gt, pred)]
    else:
        frames = [bev_image(h) for h in hist] + [bev_image(q) for q in pred]
    frames = [np.kron(f, np.ones((2, 2, 1), np.uint8)) if f.shape[0] < 150 else f for f in frames]
    pictures.append(write_gif(frames, out / "forecast.gif", fps=result["rate_hz"]))
    return pictures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="occworld-tokyo forecast", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="world-model checkpoint written by train.py")
    parser.add_argument("--session", required=True, help="a session folder, e.g. data/tokyo_gazebo/drone_...")
    parser.add_argument("--start", type=int, default=0, help="first history frame (default: %(default)s)")
    parser.add_argument("--out", required=True, help="folder for the predicted frames and pictures")
    args = parser.parse_args(argv)
    try:
        model, cfg = load_trained(args.checkpoint)
        result = forecast(model, cfg, args.session, args.start)
        pictures = write_forecast(result, Path(args.out), args.checkpoint)
    except (ForecastError, DataError, ValueError, RuntimeError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"forecast of frames {result['frames'][0]}..{result['frames'][-1]} written to {args.out}: "
          + ", ".join(p.name for p in pictures))
    return 0
