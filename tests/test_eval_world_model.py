"""training/evaluate.py at a tiny size, in process: both forecast modes of a plan-conditioned model, the metrics
over all voxels and over the camera-visible ones, VPQ at every threshold, the flat summary."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from occworld_tokyo.config import with_defaults
from occworld_tokyo.evaluation import OccupancyMetrics, copy_last_frame
from occworld_tokyo.grid import GridSpec
from occworld_tokyo.labels import VEHICLE
from occworld_tokyo.model import build_model
from occworld_tokyo.model.build import tiny_model_config
from occworld_tokyo.training.evaluate import evaluate
from occworld_tokyo.training.stages import stage_for
from occworld_tokyo.training.logs import format_metrics
from occworld_tokyo.training.precision import Precision

PCR = [-12.8, -12.8, -2.0, 12.8, 12.8, 8.0]
GRID = GridSpec(x_range=(-12.8, 12.8), y_range=(-12.8, 12.8), z_range=(-2.0, 8.0), voxel_size=(0.8, 0.8, 1.25))
H, F, B = 2, 2, 2
FP32 = Precision("cpu", None, False, "fp32")


def _batch(seed: int) -> dict[str, torch.Tensor]:
    """B windows of H + F frames on a 32 x 32 x 8 grid: terrain, a building, a vehicle moving 0.8 m per frame
    along x while the agent drives 1 m per frame along x; the camera sees the front half (x >= 0)."""
    rng = np.random.default_rng(seed)
    T = H + F
    occ = np.zeros((B, T, 32, 32, 8), np.uint8)
    inst = np.zeros((B, T, 32, 32, 8), np.int32)
    occ[..., 1] = 6
    for b in range(B):
        bx, by = rng.integers(4, 24, size=2)
        occ[b, :, bx:bx + 4, by:by + 4, 2:5] = 1
        for t in range(T):
            vx = 6 + t
            occ[b, t, vx:vx + 5, 20:23, 2:4] = VEHICLE
            inst[b, t, vx:vx + 5, 20:23, 2:4] = 9
    visible = np.zeros(occ.shape, bool)
    visible[:, :, 16:] = True
    poses = np.zeros((B, T, 13), np.float32)
    poses[..., 0] = np.arange(T) - (H - 1)           # 1 m per frame, relative to the current frame
    poses[..., 6] = 1.0                              # identity orientation (xyzw)
    poses[..., 7] = 2.0                              # 2 m/s at 2 Hz
    ego = np.zeros((B, T, 5))
    ego[..., 0] = np.arange(T)
    ego[..., 4] = 1.0
    return {"occ": torch.from_numpy(occ), "instances": torch.from_numpy(inst), "visible": torch.from_numpy(visible),
            "poses": torch.from_numpy(poses), "ego": torch.from_numpy(ego),
            "index": torch.tensor([[seed, b] for b in range(B)], dtype=torch.int64)}


@pytest.fixture(scope="module")
def batches() -> list[dict[str, torch.Tensor]]:
    return [_batch(0), _batch(1)]


def _model(plan: bool) -> torch.nn.Module:
    torch.manual_seed(0)
    extra = {"plan": dict(enabled=True, point_cloud_range=PCR)} if plan else {}
    return build_model(tiny_model_config(grid_size=(32, 32, 8), history_frames=H, future_frames=F, **extra))


def _evaluate(model, batches, **eval_overrides):
    eval_cfg = {**with_defaults({})["evaluation"], **eval_overrides}
    return evaluate(model, batches, stage_for(model), GRID, 2.0, torch.device("cpu"), FP32, eval_cfg, 14, 0)


def test_defaults_evaluate_camera_visible_voxels_and_two_vpq_thresholds():
    ev = with_defaults({})["evaluation"]
    assert ev["visibility"] == "camera" and ev["vpq_iou_thresholds"] == [0.5, 0.2]


def test_plan_conditioned_model_is_scored_in_both_modes(batches):
    metrics, example = _evaluate(_model(plan=True), batches)
    modes = {"world_model", "world_model_plan", "copy_last", "ego_warp", "ego_warp_fill"}
    for key in ("forecast", "forecast_visible", "vpq", "vpq_visible"):
        assert set(metrics[key]) == modes, key
    # planning: the unconditioned rollout's own path only (the plan-conditioned path is the plan)
    assert set(metrics["planning"]) == {"world_model", "constant_velocity", "stationary"}
    for key in ("recon_future", "recon_future_visible"):
        assert 0.0 <= metrics[key]["iou"] <= 1.0
    assert metrics["visibility"] == "camera" and metrics["val_samples"] == 2 * B
    for mode in modes:
        vpq = metrics["vpq"][mode]
        assert set(vpq["by_threshold"]) == {"0.5", "0.2"} and vpq["settings"]["iou_threshold"] == 0.5
        assert vpq["vpq"] == vpq["by_threshold"]["0.5"]["vpq"]
        f = metrics["forecast"][mode]
        assert f["steps_s"] == [0.5, 1.0] and "miou_1s" in f and "iou_avg" in f
    s = metrics["summary"]
    for key in ("world_model_plan/miou_1s", "world_model_plan/visible/iou_avg", "world_model_plan/vpq_iou0.2",
                "ego_warp/visible/vpq_iou0.5", "world_model/vpq", "plan_world_model/l2_1s"):
        assert key in s, key
    assert not any(k.startswith("plan_world_model_plan") for k in s)
    assert example["pred_plan"].shape == example["pred"].shape == (F, 32, 32, 8)
    log = format_metrics(metrics)
    assert "forecast, camera-visible voxels:" in log and "    world_model_plan mIoU 1/2/3s" in log
    assert "VPQ IoU>0.5" in log and "IoU>0.2" in log
    # the frozen copy-last baseline is an exact reference: its vehicle moved out from under it at 0.5 s, and the
    # mask scores only x >= 0 (voxel rows 16..31), where the vehicle is not: exactly the hand-run metric
    ref = OccupancyMetrics(14, 0, F, 2.0)
    for bt in batches:
        ref.update(copy_last_frame(bt["occ"][:, :H].long(), F), bt["occ"][:, H:].long(), bt["visible"][:, H:])
    assert metrics["forecast_visible"]["copy_last"]["miou"] == ref.compute()["miou"]
    assert metrics["forecast_visible"]["copy_last"] != metrics["forecast"]["copy_last"]
    # the vehicle (rows 9..13 and 10..14 in the future frames) is outside the camera mask: no visible instance
    assert metrics["vpq_visible"]["copy_last"]["gt_segments"] == 0 and metrics["vpq"]["copy_last"]["gt_segments"] > 0


def test_unconditioned_model_and_no_mask(batches):
    metrics, example = _evaluate(_model(plan=False), batches, visibility=None, vpq_iou_thresholds=[0.3])
    assert set(metrics["forecast"]) == {"world_model", "copy_last", "ego_warp", "ego_warp_fill"} and "pred_plan" not in example
    assert not any(k.endswith("_visible") for k in metrics) and metrics["visibility"] is None
    assert set(metrics["vpq"]["world_model"]["by_threshold"]) == {"0.3"}
    assert not any("/visible/" in k for k in metrics["summary"])


def test_tokenizer_stage_reports_recon_over_all_and_visible_voxels(batches):
    torch.manual_seed(0)
    vae = build_model({**tiny_model_config(grid_size=(32, 32, 8)), "type": "VAERes2D"})
    frames = [{"occ": b["occ"][:, :1], "visible": b["visible"][:, :1]} for b in batches]
    eval_cfg = with_defaults({})["evaluation"]
    metrics, _ = evaluate(vae, frames, stage_for(vae), GRID, 2.0, torch.device("cpu"), FP32, eval_cfg, 14, 0)
    assert metrics["recon"]["samples"] == metrics["recon_visible"]["samples"] == 2 * B
    assert metrics["recon"] != metrics["recon_visible"]
    assert math.isfinite(metrics["val_loss"])
