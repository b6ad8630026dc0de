"""`occworld-tokyo forecast`: roll a trained world model out from any frame of a session.

    occworld-tokyo forecast --checkpoint checkpoints/best.pth --session data/tokyo_gazebo/drone_... \
        [--start N] [--plan FILE | --plan recorded] --out forecast/

--plan (a plan-conditioned model, `model.plan.enabled`): the scene the model expects if the ego follows that path.
FILE is a JSON plan, waypoints in the current ego frame or poses in the world frame (format:
occworld_tokyo/dataset/plan_file.py); `recorded` is the session's own recorded future path. Without --plan the
model forecasts its own motion too (OccWorld). The ground-truth row is drawn when the forecast follows the recorded
path (no plan, or `--plan recorded`) and the session has the future frames.

Frames start .. start + history - 1 are the history (start + history - 1 is the current frame); the model
predicts the next `future_frames`. Written under --out, in the data format:
    occupancy/NNNNNN_occupancy.npz   `occupancy` (the model's grid; see meta.json) for each predicted frame N
    poses/NNNNNN.json                the forecast's pose in the world frame (pose JSON schema; "predicted": true when
                                     the model predicted it, false when it is the plan's)
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
from occworld_tokyo.dataset.plan_file import read_plan
from occworld_tokyo.dataset.poses import poses_to_world
from occworld_tokyo.dataset.sessions import DataError, read_pose, read_session
from occworld_tokyo.dataset.windows import OccWindowDataset, SessionPart
from occworld_tokyo.errors import UserError
from occworld_tokyo.grid import EgoFrame
from occworld_tokyo.reports.figures import bev_image, comparison_figure, side_by_side, write_gif
from occworld_tokyo.rotations import quat_yaw
from occworld_tokyo.sessions import layout, writer


class ForecastError(UserError):
    """The forecast cannot run; the message says what to give instead."""


def load_trained(checkpoint: str | Path) -> tuple[torch.nn.Module, dict]:
    """The model and resolved config stored in a training checkpoint (world-model stage)."""
    from occworld_tokyo.training.checkpoint import build_stored_model, load_checkpoint
    from occworld_tokyo.training.stages import stage_for

    ckpt = load_checkpoint(checkpoint)
    model, cfg = build_stored_model(ckpt, checkpoint)  # the stored config checked, the model sized before it is built
    stage = stage_for(model)
    if stage.name != "world_model":
        raise ForecastError(f"{checkpoint} is a {stage.name} checkpoint ({stage.model_type}); forecasting needs a "
                            "world-model checkpoint (stage 2, e.g. checkpoints/best.pth)")
    model.eval()
    return model, cfg


def forecast(model: torch.nn.Module, cfg: dict, session_dir: str | Path, start: int = 0,
             plan: str | Path | None = None) -> dict:
    """Roll out from frames start .. start + history - 1, without a plan (the model's own motion), along the
    session's recorded future (`plan='recorded'`) or along a plan file. Returns history, prediction, ground truth
    (when the session has the future frames and the forecast follows the recorded path, else None), the world
    poses of the forecast (predicted, or the plan's) and the frame indices."""
    info = read_session(Path(session_dir))
    H, F = model.history_frames, model.future_frames
    if plan is not None and not getattr(model, "plan_conditioned", False):
        raise ForecastError("--plan needs a plan-conditioned world model (config model.plan.enabled=True, e.g. "
                            "config/tiny_finetune.py); this checkpoint forecasts its own motion: drop --plan")
    if not 0 <= start <= info.n_frames - H:
        raise ForecastError(f"--start {start}: the session has {info.n_frames} frames and the model needs {H} "
                            f"history frames, so --start must be in 0..{info.n_frames - H}")
    has_future = start + H + F <= info.n_frames
    if plan == "recorded" and not has_future:
        raise ForecastError(f"--plan recorded: the session has {info.n_frames} frames, so the recorded future of "
                            f"{F} frames exists only for --start <= {info.n_frames - H - F}")
    selection = select_grid(cfg["point_cloud_range"], cfg["voxel_size"], stored=info.grid)
    part = SessionPart(info, start, start + (H + F if has_future else H))
    ds = OccWindowDataset([part], H, F if has_future else 0, selection)
    item = ds[0]
    occ, poses, ego = item["occ"].long(), item["poses"].float(), item["ego"].numpy()
    plan_poses = None
    if plan == "recorded":
        plan_poses = poses[None, H:H + F]
    elif plan is not None:
        history = [read_pose(info.path, i) for i in range(start, start + H)]
        plan_poses = torch.from_numpy(read_plan(plan, history, F, info.rate_hz))[None]
    cur = EgoFrame(*ego[H - 1, :4])
    warp = None
    if plan_poses is not None and getattr(model, "gated", False):  # the learned gate reads the warped last frame
        from occworld_tokyo.evaluation.forecasts import gate_inputs

        if plan == "recorded":
            frames = [EgoFrame(*e[:4]) for e in ego[:H + F]]
        else:  # the plan's poses, each on the current frame's ground (a plan says nothing of the ground)
            planned = poses_to_world(plan_poses[0].numpy(), cur, float(ego[H - 1, 4]))
            yaw = [float(y) for y in quat_yaw(planned["quat"])]
            frames = [EgoFrame(*e[:4]) for e in ego[:H]] + [EgoFrame(float(p[0]), float(p[1]), y, cur.ground_z)
                                                            for p, y in zip(planned["position"], yaw)]
        warp = gate_inputs(occ[None, :H], [frames], H, selection.grid)
    with torch.no_grad():
        out = model.rollout(occ[None, :H], poses[None, :H], F, plan=plan_poses, warp=warp)
    world = poses_to_world(out["poses"][0].numpy(), cur, float(ego[H - 1, 4]))
    return {
        "history": occ[:H].numpy(), "pred": out["occ"][0].numpy().astype(np.uint8),
        "gt": occ[H:].numpy() if has_future and plan in (None, "recorded") else None, "poses": world,
        "plan": None if plan is None else str(plan),
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
            "predicted": result.get("plan") is None,  # False: the pose is the plan's
        }
        writer.write_json(layout.pose_path(out, frame), record)
    writer.write_json(out / "meta.json", {
        "checkpoint": str(checkpoint), "session": str(result["session"].path), "frames": result["frames"],
        "grid": result["grid"].to_dict(), "plan": result.get("plan"),
        "note": "predicted occupancy on the model's grid (see grid); poses: predicted, or the plan's when plan is set",
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
    parser.add_argument("--plan", default=None, metavar="FILE|recorded",
                        help="forecast along this path (plan-conditioned models): a JSON plan file, or `recorded` "
                             "for the session's own future poses")
    parser.add_argument("--out", required=True, help="folder for the predicted frames and pictures")
    args = parser.parse_args(argv)
    try:
        model, cfg = load_trained(args.checkpoint)
        result = forecast(model, cfg, args.session, args.start, args.plan)
        pictures = write_forecast(result, Path(args.out), args.checkpoint)
    except (UserError, DataError, ValueError, RuntimeError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"forecast of frames {result['frames'][0]}..{result['frames'][-1]} written to {args.out}: "
          + ", ".join(p.name for p in pictures))
    return 0
