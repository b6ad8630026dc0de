"""Ego pose encoder / decoder MLPs (`pose_encoder.pose_encoder.{0,2}`, `pose_decoder.pose_decoder.{0,2}`).

Two forms, chosen by config:

* OccWorld (nuScenes): input 5 = per-frame displacement (dx, dy) + 3-way driving command one-hot; encoder
  5 -> 128 -> 128; decoder 128 -> 128 -> 3 modes x 2 (the next displacement for each command).
* Tokyo (the guide): input 13 = position (3), orientation quaternion xyzw (4), linear velocity (3), angular
  velocity (3), all relative to the current (= last history) frame; encoder 13 -> 256 -> 64 (2 layers);
  decoder 64 -> 256 -> 13 (1 mode), predicting the next state.

`num_layers` counts Linear layers; a ReLU sits between consecutive ones (indices 0, 2, 4, ... hold weights), none
after the last: the released PoseEncoder / PoseDecoder (whose hidden width is the output width, resp. the input
width; `hidden_channels` generalises that).
"""

from __future__ import annotations

import torch.nn as nn
from torch import Tensor


def _stack(in_dim: int, hidden: int, out_dim: int, num_layers: int) -> nn.Sequential:
    if num_layers < 1:
        raise ValueError("pose MLP needs num_layers >= 1")
    dims = [in_dim] + [hidden] * (num_layers - 1) + [out_dim]
    layers: list[nn.Module] = []
    for i in range(num_layers):
        if i:
            layers.append(nn.ReLU())
        layers.append(nn.Linear(dims[i], dims[i + 1]))
    return nn.Sequential(*layers)


class PoseEncoder(nn.Module):
    """(..., in_channels) pose vectors -> (..., out_channels) ego tokens."""

    def __init__(self, in_channels: int = 5, hidden_channels: int = 128, out_channels: int = 128,
                 num_layers: int = 2, **unused):
        super().__init__()
        if unused:
            raise TypeError(f"PoseEncoder: unknown config keys {sorted(unused)}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.pose_encoder = _stack(in_channels, hidden_channels, out_channels, num_layers)

    def forward(self, pose: Tensor) -> Tensor:
        return self.pose_encoder(pose)


class PoseDecoder(nn.Module):
    """(..., in_channels) ego features -> (..., num_modes, out_channels) pose predictions."""

    def __init__(self, in_channels: int = 128, hidden_channels: int = 128, out_channels: int = 2,
                 num_layers: int = 2, num_modes: int = 3, **unused):
        super().__init__()
        if unused:
            raise TypeError(f"PoseDecoder: unknown config keys {sorted(unused)}")
        self.out_channels, self.num_modes = out_channels, num_modes
        self.pose_decoder = _stack(in_channels, hidden_channels, out_channels * num_modes, num_layers)

    def forward(self, feat: Tensor) -> Tensor:
        out = self.pose_decoder(feat)
        return out.view(*out.shape[:-1], self.num_modes, self.out_channels)
