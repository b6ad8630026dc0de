"""Validation: losses, and forecast metrics of the world model beside three baselines, in one pass.

Tokenizer stage: validation loss terms and reconstruction mIoU / IoU.
World-model stage, per validation window (history H, future F):
- validation loss terms (teacher forcing, as in training);
- every forecast method of `evaluation/forecasts.py` from the window's history (and poses / ego frames): the model's
  rollout (`world_model`, OccWorld's unconditioned mode; `world_model_plan` along the true future poses for a
  plan-conditioned model), the baselines `copy_last`, `ego_warp`, `ego_warp_fill`, and the hand-made methods the
  evaluation config names (`evaluation/hand_made.py`); planning baseline `constant_velocity` (the current velocity
  extrapolated) and, copy-last's counterpart, `stationary`;
- for each forecast: OccupancyMetrics (mIoU under Occ3D's and the released OccWorld's rule, binary IoU, per step,
  at 1/2/3 s and averaged) and VPQMetric (FIERY VPQ on the dynamic classes at every `evaluation.vpq_iou_thresholds`;
  predicted instances = tracked connected components), each over all voxels and, with `evaluation.visibility`,
  over the voxels its mask marks visible (keys `*_visible`), for all windows and per agent type (`by_agent`), all
  methods on the same windows (`evaluation/scores.py`, `windows_scored`);
- PlanningMetrics for paths (L2 at 1/2/3 s, collision of the path's box with the ground-truth occupancy): the
  unconditioned rollout's predicted poses only (the plan-conditioned rollout's path IS the plan);
- the tokenizer's reconstruction of the future frames (the ceiling any forecast through it can reach).
Runs on one process (rank 0) over the whole validation set (or `evaluation.max_samples` windows).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch

from occworld_tokyo.rotations import quat_yaw
from occworld_tokyo.grid import GridSpec
from occworld_tokyo.training.precision import Precision


def _mean_losses(sums: dict[str, float], n: int) -> dict[str, float]:
    return {f"val_{k}" if k != "loss" else "val_loss": v / max(1, n) for k, v in sums.items()}


def _accumulate(sums: dict[str, float], out: dict[str, torch.Tensor], batch: int) -> None:
    for k, v in out.items():
        if k != "pred" and torch.is_tensor(v) and v.numel() == 1:
            sums[k] = sums.get(k, 0.0) + float(v.detach().float()) * batch


@torch.no_grad()
def evaluate(model: torch.nn.Module, loader, stage, grid: GridSpec, rate_hz: float, device: torch.device,
             precision: Precision, eval_cfg: dict, num_classes: int, free_index: int,
             max_samples: int | None = None, log=print) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Validation of `model` by its stage object (`stages.stage_for(model)`, whose `validate` picks
    `evaluate_tokenizer` or `evaluate_world_model`). Returns (metrics dict, example arrays for pictures: 'gt',
    'pred' (T, X, Y, Z) of the first window)."""
    from occworld_tokyo.evaluation import AllAndVisible, ReconstructionMetrics

    was_training = model.training
    model.eval()
    t0 = time.perf_counter()
    visibility = eval_cfg.get("visibility")
    recon = AllAndVisible(lambda: ReconstructionMetrics(num_classes, free_index), bool(visibility))
    metrics, example, n = stage.validate(model, loader, grid=grid, rate_hz=rate_hz, device=device,
                                         precision=precision, eval_cfg=eval_cfg, num_classes=num_classes,
                                         free_index=free_index, max_samples=max_samples, recon=recon)
    metrics["visibility"] = visibility
    metrics["val_samples"] = n
    metrics["eval_seconds"] = time.perf_counter() - t0
    model.train(was_training)
    return metrics, example


def evaluate_tokenizer(model, loader, *, device, precision: Precision, eval_cfg: dict, max_samples: int | None,
                       recon, **unused) -> tuple[dict[str, Any], dict[str, np.ndarray], int]:
    """Stage 1: validation loss terms, reconstruction mIoU / IoU (all and visible voxels), codebook use."""
    from occworld_tokyo.model.vae import codebook_usage

    visibility = eval_cfg.get("visibility")
    sums: dict[str, float] = {}
    n = 0
    example: dict[str, np.ndarray] = {}
    code_counts = torch.zeros(model.n_e, dtype=torch.long)
    for batch in loader:
        occ = batch["occ"].to(device).long()
        with precision.autocast():
            out = model.forward_train(occ)
        b = occ.shape[0]
        _accumulate(sums, out, b)
        recon.update(out["pred"], occ, mask=_visible(batch, visibility, device))
        code_counts += torch.bincount(out["indices"].flatten().cpu(), minlength=model.n_e)
        if not example:
            example = {"gt": occ[0].cpu().numpy(), "pred": out["pred"][0].cpu().numpy()}
        n += b
        if max_samples and n >= max_samples:
            break
    metrics = {**_mean_losses(sums, n),
               "codebook": {"n_e": model.n_e, **codebook_usage(None, model.n_e, code_counts)}}
    _put(metrics, "recon", *recon.compute())
    return metrics, example, n


def _visible(batch: dict, visibility: str | None, device, frames: slice = slice(None)):
    """The batch's visibility mask (True = visible) of the evaluated frames, or None when none is evaluated."""
    if not visibility or "visible" not in batch:
        return None
    return batch["visible"][:, frames].to(device)


def _put(metrics: dict, key: str, all_voxels: Any, visible: Any) -> None:
    """metrics[key] = the all-voxel result; metrics[key + '_visible'] = the masked one when there is one."""
    metrics[key] = all_voxels
    if visible is not None:
        metrics[f"{key}_visible"] = visible


def evaluate_world_model(model, loader, *, grid: GridSpec, rate_hz: float, device, precision: Precision,
                         eval_cfg: dict, num_classes: int, free_index: int, max_samples: int | None, recon):
    from occworld_tokyo.evaluation import OccupancyMetrics, PlanningMetrics, VPQMetric
    from occworld_tokyo.evaluation.forecasts import ego_frames, forecast_methods
    from occworld_tokyo.evaluation.hand_made import method_names
    from occworld_tokyo.evaluation.planning import DEFAULT_AGENT_BOX
    from occworld_tokyo.evaluation.scores import MethodScores, window_agents

    H, F = model.history_frames, model.future_frames
    visibility = eval_cfg.get("visibility")
    thresholds = [float(t) for t in eval_cfg["vpq_iou_thresholds"]]
    scores = MethodScores(lambda: OccupancyMetrics(num_classes, free_index, F, rate_hz),
                          lambda: VPQMetric(iou_threshold=thresholds, n_steps=F, grid=grid), bool(visibility))
    box = eval_cfg["agent_box"] or DEFAULT_AGENT_BOX  # None: the metrics default
    plan_m = {m: PlanningMetrics(F, rate_hz, grid, box) for m in ("world_model", "constant_velocity", "stationary")}
    notes: list[str] = []
    sums: dict[str, float] = {}
    n = 0
    with_warp = True
    example: dict[str, np.ndarray] = {}
    for batch in loader:
        occ = batch["occ"].to(device).long()
        poses = batch["poses"].to(device).float()
        ego = batch["ego"].numpy()
        with precision.autocast():
            # a frozen tokenizer encodes the window once: the teacher-forced loss and the ceiling below share it
            codes = model.vae.encode(occ)[1] if model.freeze_vae else None
            out = model.forward_train(occ, poses, codes=codes)
        B = occ.shape[0]
        _accumulate(sums, out, B)
        # the forecasts read the history frames only (and the poses / ego frames: the plan, the baselines' warp)
        try:
            preds, roll = forecast_methods(model, occ[:, :H], poses, ego, grid, eval_cfg, precision, with_warp)
        except ValueError as exc:  # e.g. a z-pooled grid whose level shift is not a whole number of levels
            if not with_warp:
                raise
            with_warp = False  # dropped for every window, not scored on some: methods share their windows
            dropped = ["ego_warp", "ego_warp_fill", "world_model_plan+voxel_copy"]
            scores.drop(dropped)
            notes.append(f"{', '.join(dropped)} not scored: {exc}")
            preds, roll = forecast_methods(model, occ[:, :H], poses, ego, grid, eval_cfg, precision, with_warp)
        gt = occ[:, H:]
        mask = _visible(batch, visibility, device, slice(H, None))
        frames = ego_frames(ego)
        ids, agents = window_agents(getattr(loader, "dataset", None), batch["index"].numpy())
        gt_cpu, inst = gt.cpu().numpy(), batch["instances"][:, H:].numpy()
        mask_cpu = None if mask is None else mask.cpu().numpy()
        for m, pred in preds.items():
            scores.update(m, ids, agents, pred, gt, mask, gt_np=gt_cpu, inst=inst, frames=[f[H:] for f in frames],
                          mask_np=mask_cpu)
        # tokenizer ceiling: reconstruct the ground-truth future frames through the frozen tokenizer
        idx = codes[:, H:] if codes is not None else model.vae.encode(gt)[1]
        recon.update(model.vae.decode_indices(idx), gt, mask=mask)
        # planning: paths in the current ego frame
        p = batch["poses"].numpy().astype(np.float64)
        gt_xy = p[:, H:, :2]
        gt_yaw = quat_yaw(p[:, H:, 3:7])
        dz = ego[:, H:, 3] - ego[:, H - 1:H, 3]
        agent_z = ego[:, H:, 4] - ego[:, H - 1:H, 3]  # agent height above the current frame's ground
        t_s = (np.arange(1, F + 1) / rate_hz)[None, :, None]
        paths = {"world_model": roll["poses"][..., :2].float().cpu().numpy(),
                 "constant_velocity": p[:, H - 1:H, 7:9] * t_s,
                 "stationary": np.zeros_like(gt_xy)}
        for m, xy in paths.items():
            plan_m[m].update(xy, gt_xy, gt_cpu, gt_yaw=gt_yaw, gt_ground_dz=dz, agent_z=agent_z)
        if not example:
            example = {"gt": gt_cpu[0], "pred": preds["world_model"][0].cpu().numpy(),
                       "copy_last": preds["copy_last"][0].cpu().numpy()}
            if "world_model_plan" in preds:
                example["pred_plan"] = preds["world_model_plan"][0].cpu().numpy()
        n += B
        if max_samples and n >= max_samples:
            break
    metrics: dict[str, Any] = _mean_losses(sums, n)
    metrics["windows_scored"] = scores.check_same_windows()
    metrics["hand_made"] = {m: {k: eval_cfg.get(k) for k in ("voxel_copy", "fill_copy", "unseen_class_logit")}
                            for m in method_names(eval_cfg, bool(getattr(model, "plan_conditioned", False)))
                            if m in scores.order}
    metrics.update(scores.compute("all"))
    metrics["by_agent"] = {g: scores.compute(g) for g in scores.groups() if g != "all"}
    metrics["planning"] = {m: plan_m[m].compute() for m in plan_m}
    _put(metrics, "recon_future", *recon.compute())
    metrics["notes"] = notes
    metrics["summary"] = summarize(metrics)
    return metrics, example, n


def summarize(metrics: dict) -> dict[str, float | None]:
    """Flat headline numbers (what TensorBoard and the log show). Per forecast method m: `m/miou_1s` ..
    `m/iou_avg`, `m/vpq` (headline threshold) and `m/vpq_iou<t>` per threshold, over all voxels; the same under
    `m/visible/...` over the visible voxels; per path p: `plan_p/l2_1s` .. `plan_p/collision_rate`."""
    out: dict[str, float | None] = {}
    for suffix, tag in (("", ""), ("_visible", "visible/")):
        for m, f in metrics.get(f"forecast{suffix}", {}).items():
            for key in ("miou_1s", "miou_2s", "miou_3s", "miou_avg", "miou_occworld_1s", "miou_occworld_2s",
                        "miou_occworld_3s", "miou_occworld_avg", "iou_1s", "iou_2s", "iou_3s", "iou_avg"):
                if key in f:
                    out[f"{m}/{tag}{key}"] = f[key]
        for m, v in metrics.get(f"vpq{suffix}", {}).items():
            out[f"{m}/{tag}vpq"] = v.get("vpq")
            for thr, r in (v.get("by_threshold") or {}).items():
                out[f"{m}/{tag}vpq_iou{thr}"] = r.get("vpq")
    for m, p in metrics.get("planning", {}).items():
        for key in ("l2_1s", "l2_2s", "l2_3s", "l2_avg", "collision_rate"):
            if key in p:
                out[f"plan_{m}/{key}"] = p[key]
    return {k: (None if v is None or (isinstance(v, float) and math.isnan(v)) else v) for k, v in out.items()}
