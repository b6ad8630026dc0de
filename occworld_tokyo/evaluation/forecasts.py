"""Every forecast method of one batch of windows, from the same inputs: the one interface the evaluation scores.

Methods (labels (B, F, X, Y, Z) in each future frame's ego grid):
- `world_model`: the model's autoregressive rollout from the history, its own predicted poses (OccWorld);
- `world_model_plan` (plan-conditioned models): the rollout told the true future poses (the plan); with a learned
  gate (model/gate.py) it reads the warped last frame too, and `world_model_plan_ungated` is its decoder alone;
- `copy_last`, `ego_warp`, `ego_warp_fill`: the hand-made baselines (baselines.py; the warp uses the true future
  ego frames);
- the hand-made steps on the model's forecast the evaluation config asks for (hand_made.py), each by its name.

What each method may read: the H history frames' occupancy, the poses (history; the true future ones are the plan)
and the ego frames of the window (the baselines' warp). Never a future occupancy grid, instance map or mask: the
evaluation passes them nowhere near this function (tests/test_eval_forecasts.py randomises them).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..grid import EgoFrame, GridSpec
from .baselines import copy_last_frame, ego_warp, fill_outside
from .hand_made import decode_with_priors, method_names


def ego_frames(ego: np.ndarray) -> list[list[EgoFrame]]:
    """(B, T, 5) ego rows (world x, y, yaw, ground_z, agent z) -> per window the T EgoFrames."""
    return [[EgoFrame(float(e[0]), float(e[1]), float(e[2]), float(e[3])) for e in row] for row in ego]


def baseline_warps(occ_hist: Tensor, frames: list[list[EgoFrame]], history: int, grid: GridSpec) \
        -> tuple[Tensor, Tensor, Tensor]:
    """The one warp of the baselines and the hand-made methods: the last history frame of each window moved by the
    true ego motion into each future frame -> (ego_warp labels, ego_warp_fill labels, validity (True = the warp
    reached)), each (B, F, X, Y, Z). ValueError when a ground change is not a whole number of levels."""
    last = [occ_hist[b, -1].cpu() for b in range(occ_hist.shape[0])]
    warps = [ego_warp(last[b], frames[b][history - 1], frames[b][history:], grid, return_valid=True)
             for b in range(len(last))]
    dev = occ_hist.device
    warped = torch.stack([w for w, _ in warps]).to(dev).long()
    valid = torch.stack([v for _, v in warps]).to(dev)
    filled = torch.stack([fill_outside(w, v, last[b]) for b, (w, v) in enumerate(warps)]).to(dev).long()
    return warped, filled, valid


def gate_inputs(occ_hist: Tensor, frames: list[list[EgoFrame]], history: int, grid: GridSpec) -> dict[str, Tensor]:
    """What a gated model (model/gate.py) reads along a plan, from the same warp: {'warped' (B, F, X, Y, Z) labels of
    `ego_warp`, 'valid' (B, F, X, Y, Z) where it reached, 'same' (B, X, Y, Z) the last history frame}."""
    warped, _, valid = baseline_warps(occ_hist, frames, history, grid)
    return _gate_dict(occ_hist, warped, valid)


def _gate_dict(occ_hist: Tensor, warped: Tensor, valid: Tensor) -> dict[str, Tensor]:
    return {"warped": warped, "valid": valid, "same": occ_hist[:, -1].long()}


def forecast_methods(model, occ_hist: Tensor, poses: Tensor, ego: np.ndarray, grid: GridSpec, eval_cfg: dict,
                     precision, with_warp: bool = True) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """occ_hist (B, H, X, Y, Z) history labels, poses (B, H + F, 13) (relative to the current frame; the future
    rows are the plan), ego (B, H + F, 5) -> ({method: (B, F, X, Y, Z) labels}, the unconditioned rollout's output
    (its predicted poses for the planning metrics)). `with_warp=False` leaves out the methods that need the
    warp (ego_warp, ego_warp_fill, voxel copy)."""
    H = occ_hist.shape[1]
    F = poses.shape[1] - H
    plan_mode = bool(getattr(model, "plan_conditioned", False))
    filled = valid = gate = None
    if with_warp:
        warped, filled, valid = baseline_warps(occ_hist, ego_frames(ego), H, grid)
        gate = _gate_dict(occ_hist, warped, valid)
    elif getattr(model, "gated", False):
        raise ValueError("a gated model reads the warped last frame, and this grid's warp cannot be computed")
    hand_made = method_names(eval_cfg, plan_mode)
    copy_on_plan = "world_model_plan+voxel_copy" in hand_made and with_warp
    with precision.autocast():  # the hand-made methods reuse the rollouts' decoded logits (one decoding per frame)
        roll = model.rollout(occ_hist, poses[:, :H], F, keep_logits="world_model+unseen_prior" in hand_made)
        roll_plan = model.rollout(occ_hist, poses[:, :H], F, plan=poses[:, H:], warp=gate,
                                  keep_logits=copy_on_plan) if plan_mode else None
    preds = {"world_model": roll["occ"].long()}
    if roll_plan is not None:
        preds["world_model_plan"] = roll_plan["occ"].long()
        if "occ_ungated" in roll_plan:  # the same model without its gate: an ablation, not a method of its own
            preds["world_model_plan_ungated"] = roll_plan["occ_ungated"].long()
    preds["copy_last"] = copy_last_frame(occ_hist, F).long()
    if with_warp:
        preds["ego_warp"], preds["ego_warp_fill"] = gate["warped"], filled
    if copy_on_plan:
        preds["world_model_plan+voxel_copy"] = decode_with_priors(
            model, None, occ_hist, logits=roll_plan.pop("logits"), warped=filled, valid=valid,
            voxel_copy=eval_cfg["voxel_copy"], fill_copy=eval_cfg.get("fill_copy"),
            unseen_class_logit=eval_cfg.get("unseen_class_logit")).long()
    if "world_model+unseen_prior" in hand_made:
        preds["world_model+unseen_prior"] = decode_with_priors(
            model, None, occ_hist, logits=roll.pop("logits"), unseen_class_logit=eval_cfg["unseen_class_logit"]).long()
    return preds, roll
