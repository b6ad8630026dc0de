"""Validation: losses, and forecast metrics of the world model beside two baselines, in one pass.

Tokenizer stage: validation loss terms and reconstruction mIoU / IoU.
World-model stage, per validation window (history H, future F):
- validation loss terms (teacher forcing, as in training);
- the model's autoregressive rollout from the H history frames -> F forecast frames and poses;
- baselines on the same windows: `copy_last` (last observed frame repeated) and `ego_warp` (last frame
  warped by the ground-truth future ego motion); planning baseline `constant_velocity` (the current velocity
  extrapolated); the copy-last occupancy baseline's planning counterpart is standing still (`stationary`);
- for each: OccupancyMetrics (mIoU over non-free classes and binary IoU per step, at 1/2/3 s and averaged),
  VPQMetric (FIERY VPQ on the dynamic classes; predicted instances = tracked connected components),
  PlanningMetrics for paths (L2 at 1/2/3 s, collision of the path's box with the ground-truth occupancy);
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
from occworld_tokyo.grid import EgoFrame, GridSpec
from occworld_tokyo.training.precision import Precision


def _frames(ego: np.ndarray) -> list[EgoFrame]:
    return [EgoFrame(float(e[0]), float(e[1]), float(e[2]), float(e[3])) for e in ego]


def _mean_losses(sums: dict[str, float], n: int) -> dict[str, float]:
    return {f"val_{k}" if k != "loss" else "val_loss": v / max(1, n) for k, v in sums.items()}


def _accumulate(sums: dict[str, float], out: dict[str, torch.Tensor], batch: int) -> None:
    for k, v in out.items():
        if k != "pred" and torch.is_tensor(v) and v.numel() == 1:
            sums[k] = sums.get(k, 0.0) + float(v.detach().float()) * batch


@torch.no_grad()
def evaluate(model: torch.nn.Module, loader, stage: str, grid: GridSpec, rate_hz: float, device: torch.device,
             precision: Precision, eval_cfg: dict, num_classes: int, free_index: int,
             max_samples: int | None = None, log=print) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Returns (metrics dict, example arrays for pictures: 'gt', 'pred' (T, X, Y, Z) of the first window)."""
    from occworld_tokyo.evaluation import OccupancyMetrics, ReconstructionMetrics

    was_training = model.training
    model.eval()
    t0 = time.perf_counter()
    sums: dict[str, float] = {}
    n = 0
    example: dict[str, np.ndarray] = {}
    visibility = bool(eval_cfg.get("visibility"))
    recon = ReconstructionMetrics(num_classes, free_index)
    if stage == "tokenizer":
        from occworld_tokyo.model.vae import codebook_usage

        code_counts = torch.zeros(model.n_e, dtype=torch.long)
        for batch in loader:
            occ = batch["occ"].to(device).long()
            with precision.autocast():
                out = model.forward_train(occ)
            b = occ.shape[0]
            _accumulate(sums, out, b)
            mask = batch["visible"].to(device) if visibility else None
            recon.update(out["pred"], occ, mask)
            code_counts += torch.bincount(out["indices"].flatten().cpu(), minlength=model.n_e)
            if not example:
                example = {"gt": occ[0].cpu().numpy(), "pred": out["pred"][0].cpu().numpy()}
            n += b
            if max_samples and n >= max_samples:
                break
        metrics = {**_mean_losses(sums, n), "recon": recon.compute(),
                   "codebook": {"n_e": model.n_e, **codebook_usage(None, model.n_e, code_counts)}}
    else:
        metrics, example, n = _evaluate_world_model(model, loader, grid, rate_hz, device, precision, eval_cfg,
                                                    num_classes, free_index, max_samples, recon)
    metrics["val_samples"] = n
    metrics["eval_seconds"] = time.perf_counter() - t0
    model.train(was_training)
    return metrics, example


def _evaluate_world_model(model, loader, grid: GridSpec, rate_hz: float, device, precision: Precision,
                          eval_cfg: dict, num_classes: int, free_index: int, max_samples: int | None, recon):
    from occworld_tokyo.evaluation import OccupancyMetrics, PlanningMetrics, VPQMetric, copy_last_frame, ego_warp
    from occworld_tokyo.evaluation.planning import DEFAULT_AGENT_BOX

    H, F = model.history_frames, model.future_frames
    methods = ["world_model", "copy_last", "ego_warp"]
    occ_m = {m: OccupancyMetrics(num_classes, free_index, F, rate_hz) for m in methods}
    vpq_kw = dict(iou_threshold=float(eval_cfg["vpq_iou_threshold"]), n_steps=F, grid=grid)
    vpq_m = {m: VPQMetric(**vpq_kw) for m in methods}
    box = eval_cfg["agent_box"] or DEFAULT_AGENT_BOX  # None: the metrics default
    plan_m = {m: PlanningMetrics(F, rate_hz, grid, box) for m in ("world_model", "constant_velocity", "stationary")}
    notes: list[str] = []
    sums: dict[str, float] = {}
    n = 0
    example: dict[str, np.ndarray] = {}
    for batch in loader:
        occ = batch["occ"].to(device).long()
        poses = batch["poses"].to(device).float()
        with precision.autocast():
            out = model.forward_train(occ, poses)
            roll = model.rollout(occ[:, :H], poses[:, :H], F)
        B = occ.shape[0]
        _accumulate(sums, out, B)
        gt = occ[:, H:]
        mask = batch["visible"][:, H:].to(device) if "visible" in batch and eval_cfg.get("visibility") else None
        ego = batch["ego"].numpy()
        frames = [_frames(ego[b]) for b in range(B)]
        preds = {"world_model": roll["occ"].long(), "copy_last": copy_last_frame(occ[:, :H], F)}
        try:
            preds["ego_warp"] = torch.stack([ego_warp(occ[b, H - 1].cpu(), frames[b][H - 1], frames[b][H:], grid)
                                             for b in range(B)]).to(device).long()
        except ValueError as exc:  # e.g. a z-pooled grid whose level shift is not a whole number of levels
            if "ego_warp" in preds or not any("ego_warp" in s for s in notes):
                notes.append(f"ego_warp baseline unavailable: {exc}")
        gt_cpu, inst = gt.cpu().numpy(), batch["instances"][:, H:].numpy()
        for m, pred in preds.items():
            occ_m[m].update(pred, gt, mask)
            vpq_m[m].update(pred.cpu().numpy(), gt_cpu, inst, frames=[f[H:] for f in frames])
        # tokenizer ceiling: reconstruct the ground-truth future frames through the frozen tokenizer
        _, idx = model.vae.encode(gt)
        recon.update(model.vae.decode_indices(idx), gt, mask)
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
        n += B
        if max_samples and n >= max_samples:
            break
    metrics: dict[str, Any] = _mean_losses(sums, n)
    metrics["forecast"] = {m: occ_m[m].compute() for m in methods if occ_m[m].steps_present()}
    metrics["vpq"] = {m: vpq_m[m].compute() for m in methods if m in metrics["forecast"]}
    metrics["planning"] = {m: plan_m[m].compute() for m in plan_m}
    metrics["recon_future"] = recon.compute()
    metrics["notes"] = notes
    metrics["summary"] = summarize(metrics)
    return metrics, example, n


def summarize(metrics: dict) -> dict[str, float | None]:
    """Flat headline numbers (what TensorBoard and the log show): per method mIoU/IoU avg, VPQ, L2, collision."""
    out: dict[str, float | None] = {}
    for m, f in metrics.get("forecast", {}).items():
        for key in ("miou_1s", "miou_2s", "miou_3s", "miou_avg", "iou_1s", "iou_2s", "iou_3s", "iou_avg"):
            if key in f:
                out[f"{m}/{key}"] = f[key]
    for m, v in metrics.get("vpq", {}).items():
        out[f"{m}/vpq"] = v.get("vpq")
    for m, p in metrics.get("planning", {}).items():
        for key in ("l2_1s", "l2_2s", "l2_3s", "l2_avg", "collision_rate"):
            if key in p:
                out[f"plan_{m}/{key}"] = p[key]
    return {k: (None if v is None or (isinstance(v, float) and math.isnan(v)) else v) for k, v in out.items()}
