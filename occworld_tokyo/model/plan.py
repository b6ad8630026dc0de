"""Plan conditioning (not in OccWorld; off by default): the world model is told where the ego will be.

A planner asks "what will the scene look like if I follow this path?". OccWorld cannot answer: its scene stream
never reads the ego tokens (they only read the scene), so the forecast is the same whatever path is planned.
With `model.plan = dict(enabled=True, ...)` the scene queries of input frame t (the stream that predicts frame
t+1) are built from the *planned* pose of frame t+1:

    query_t = warp(tokens_t, pose_t -> pose_t+1) + plan_encoder(motion(pose_t, pose_t+1))   (+ temporal emb. t+1)

* `warp`: frame t's token map resampled (nearest cell centre, like the ego-warp baseline) into frame t+1's ego grid:
  a token-space ego warp, so the transformer starts from "the scene moved by the plan" and learns what changes
  (new ground entering the view, movers). Cells that come from outside frame t's map get the zero vector. Only yaw
  and x/y move the map: the height axis is folded into the token channels, so a change of ground level is left to
  the plan embedding.
* `plan_encoder`: Linear-ReLU-Linear on the 8 motion numbers (`motion_features`); its last layer starts at zero, so
  an enabled model starts from the pure warp and a released checkpoint loads unchanged (the module is new).

Frames and units: poses are the 13-d vectors of `dataset/poses.py` (metres, quaternion xyzw body -> current ego
frame, m/s, rad/s, all relative to the current frame); the token map spans the config's `point_cloud_range` x/y
(metres, ego frame: x forward = token rows, y left = token columns).

Hand-made steps on the decoded forecast (carrying the last observed frame's voxels along the plan, the unseen-class
prior) are not part of the model: they are named methods of the evaluation (`evaluation/hand_made.py`).

`dropout` (training only): that share of the training windows is run without the plan (queries = tokens, exactly
OccWorld), so one trained model forecasts in both modes: with a plan (`rollout(..., plan=...)`) and without one
(the model's own predicted poses, as OccWorld).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from occworld_tokyo.rotations import quat_yaw

MOTION_DIM = 8


def pose_yaw(poses: Tensor) -> Tensor:
    """(..., 13) pose vectors -> (...) yaw (rad) of their orientation quaternion (xyzw at [3:7])."""
    return quat_yaw(poses[..., 3:7])


def _rotate(x: Tensor, y: Tensor, yaw: Tensor) -> tuple[Tensor, Tensor]:
    c, s = torch.cos(yaw), torch.sin(yaw)
    return c * x - s * y, s * x + c * y


def motion_features(pose_from: Tensor, pose_to: Tensor) -> Tensor:
    """(..., 13) poses of frames t and t+1 -> (..., 8): dx, dy, dz of frame t+1 in frame t's ego grid (m),
    sin and cos - 1 of the yaw change, frame t+1's linear velocity in frame t's ego grid (m/s)."""
    yaw0, yaw1 = pose_yaw(pose_from), pose_yaw(pose_to)
    dx, dy = _rotate(pose_to[..., 0] - pose_from[..., 0], pose_to[..., 1] - pose_from[..., 1], -yaw0)
    vx, vy = _rotate(pose_to[..., 7], pose_to[..., 8], -yaw0)
    dyaw = yaw1 - yaw0
    return torch.stack([dx, dy, pose_to[..., 2] - pose_from[..., 2], torch.sin(dyaw), torch.cos(dyaw) - 1.0,
                        vx, vy, pose_to[..., 9]], dim=-1)


def warp_grid(pose_from: Tensor, pose_to: Tensor, token_size: Sequence[int], extent: Sequence[float]) -> Tensor:
    """Sampling grid for F.grid_sample: for every token cell of frame t+1's map, where its centre lies in frame
    t's map. pose_from, pose_to (N, 13); token_size (h, w); extent (x_lo, x_hi, y_lo, y_hi) metres ->
    (N, h, w, 2) normalized (column = y, row = x) coordinates, align_corners=False convention."""
    h, w = (int(s) for s in token_size)
    x_lo, x_hi, y_lo, y_hi = (float(e) for e in extent)
    dev, dt = pose_from.device, pose_from.dtype
    cx = x_lo + (torch.arange(h, device=dev, dtype=dt) + 0.5) * (x_hi - x_lo) / h
    cy = y_lo + (torch.arange(w, device=dev, dtype=dt) + 0.5) * (y_hi - y_lo) / w
    gx, gy = torch.meshgrid(cx, cy, indexing="ij")                       # (h, w) cell centres in frame t+1
    yaw0, yaw1 = pose_yaw(pose_from)[:, None, None], pose_yaw(pose_to)[:, None, None]
    wx, wy = _rotate(gx, gy, yaw1)                                       # -> current frame
    wx = wx + pose_to[:, 0, None, None] - pose_from[:, 0, None, None]
    wy = wy + pose_to[:, 1, None, None] - pose_from[:, 1, None, None]
    sx, sy = _rotate(wx, wy, -yaw0)                                      # -> frame t
    u = (sy - y_lo) / (y_hi - y_lo) * 2.0 - 1.0                          # grid_sample x = width = y axis
    v = (sx - x_lo) / (x_hi - x_lo) * 2.0 - 1.0
    return torch.stack([u, v], dim=-1)


def _nearest(maps: Tensor, grid: Tensor, outside: str) -> Tensor:
    """maps (N, C, h, w) sampled at grid (N, h, w, 2), nearest cell; `outside` = grid_sample's padding_mode."""
    return F.grid_sample(maps, grid.to(maps.dtype), mode="nearest", padding_mode=outside, align_corners=False)


def warp_tokens(tokens: Tensor, pose_from: Tensor, pose_to: Tensor, extent: Sequence[float],
                outside: str = "zeros") -> Tensor:
    """Token maps (N, C, h, w) of frames t, seen from the planned frames t+1 (nearest cell; zero outside, or the
    nearest edge cell with outside='border')."""
    return _nearest(tokens, warp_grid(pose_from.float(), pose_to.float(), tokens.shape[-2:], extent), outside)


class PlanEncoder(nn.Module):
    """(..., 8) motion features -> (..., out_channels) added to the scene queries; the last layer starts at 0."""

    def __init__(self, out_channels: int, hidden_channels: int = 64):
        super().__init__()
        self.plan_encoder = nn.Sequential(nn.Linear(MOTION_DIM, hidden_channels), nn.ReLU(),
                                          nn.Linear(hidden_channels, out_channels))
        nn.init.zeros_(self.plan_encoder[2].weight)
        nn.init.zeros_(self.plan_encoder[2].bias)

    def forward(self, motion: Tensor) -> Tensor:
        return self.plan_encoder(motion)


class PlanConditioning(nn.Module):
    """The plan queries of one model (module docstring). `extent` = (x_lo, x_hi, y_lo, y_hi) of the token map in
    metres (the config's point_cloud_range x/y). `copy_logit` (None: off) adds a learned logit (starting at that
    value) to the code each cell's warped token has, inside frame t's map: the forecast starts as the token-space
    ego warp and the transformer learns where to depart from it. `outside`: what cells coming from outside frame
    t's map get: 'zeros' (a zero token, nothing to copy) or 'border' (the nearest edge cell's token and code, the
    scene continued outward)."""

    def __init__(self, embed_dim: int, point_cloud_range: Sequence[float], hidden_channels: int = 64,
                 dropout: float = 0.0, warp: bool = True, embed: bool = True, copy_logit: float | None = None,
                 outside: str = "zeros", **unused):
        super().__init__()
        moved = sorted(k for k in ("voxel_copy", "fill_copy") if k in unused)
        if moved:
            raise ValueError(f"model.plan.{moved[0]} is not part of the model any more: it is a hand-made step of the "
                             f"evaluation; move it to evaluation.{moved[0]} (docs/metrics.md, 'Hand-made "
                             "methods')")
        if unused:
            raise TypeError(f"model.plan: unknown config keys {sorted(unused)} (known: enabled, point_cloud_range, "
                            "hidden_channels, dropout, warp, embed, copy_logit, outside)")
        if outside not in ("zeros", "border"):
            raise ValueError(f"model.plan.outside must be 'zeros' or 'border' (got {outside!r})")
        if len(point_cloud_range) != 6:
            raise ValueError(f"model.plan.point_cloud_range needs 6 numbers (got {point_cloud_range!r})")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"model.plan.dropout must be in [0, 1) (got {dropout})")
        if copy_logit is not None and not warp:
            raise ValueError("model.plan.copy_logit needs warp=True (it copies the warped codes)")
        pcr = [float(v) for v in point_cloud_range]
        self.extent = (pcr[0], pcr[3], pcr[1], pcr[4])
        self.dropout, self.warp, self.outside = float(dropout), bool(warp), outside
        self.encoder = PlanEncoder(embed_dim, hidden_channels) if embed else None
        self.copy_logit = None if copy_logit is None else nn.Parameter(torch.tensor(float(copy_logit)))
        self.gate = None  # a VoxelGate (model/gate.py) when model.plan.gate is set; build_plan adds it

    def forward(self, tokens: Tensor, codes: Tensor, poses: Tensor, next_poses: Tensor,
                keep: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """tokens (B, F, C, h, w) and codes (B, F, h, w) of frames t, poses (B, F, 13) of frames t, next_poses
        (B, F, 13) of the planned frames t+1 -> (scene query inputs (B, F, C, h, w), the codes to copy (B, F, h, w),
        -1 where there is none, or None without copy_logit). `keep` (B,) bool: False rows get the plain tokens and
        nothing to copy (OccWorld)."""
        b, f = tokens.shape[:2]
        queries, copy = tokens, None
        if self.warp:
            grid = warp_grid(poses.flatten(0, 1).float(), next_poses.flatten(0, 1).float(), tokens.shape[-2:],
                             self.extent)
            queries = _nearest(tokens.flatten(0, 1), grid, self.outside).view_as(tokens)
            if self.copy_logit is not None:  # codes + 1 so that "outside" (0 padding) becomes -1
                moved = _nearest((codes.flatten(0, 1)[:, None] + 1).float(), grid, self.outside)
                copy = (moved.round().long() - 1).view(codes.shape)
        if self.encoder is not None:
            bias = self.encoder(motion_features(poses.float(), next_poses.float()).to(tokens.dtype))
            queries = queries + bias[..., None, None]
        if keep is not None:
            queries = torch.where(keep.view(b, 1, 1, 1, 1), queries, tokens)
            if copy is not None:
                copy = torch.where(keep.view(b, 1, 1, 1), copy, torch.full_like(copy, -1))
        return queries, copy

    def add_copy_prior(self, logits: Tensor, copy: Tensor | None) -> Tensor:
        """logits (B, F, n_codes, h, w) + copy_logit at each cell's code to copy (copy (B, F, h, w), -1 = none)."""
        if copy is None or self.copy_logit is None:
            return logits
        valid = copy >= 0
        bonus = (valid.to(logits.dtype) * self.copy_logit.to(logits.dtype))[:, :, None]
        return logits.scatter_add(2, copy.clamp(min=0)[:, :, None], bonus)
