"""A learned per-voxel gate (not in OccWorld; `model.plan.gate`): how much to trust the last observed frame.

Along a plan, the last observed frame moved by the planned ego motion (the ego-warp baselines' warp,
evaluation/forecasts.py `baseline_warps`) already shows most of the static scene of each forecast frame; the
tokenizer's decoder redraws it from a few hundred codes. The gate learns, per voxel, from

    the decoder's class probabilities of the forecast frame          (C channels)
    the warped last frame's class, one-hot, where the warp reaches     (C)
    the last frame's class at the same ego-grid place, one-hot         (C)
    whether the warp reaches                                           (1)
    with `positions`: the voxel's place in the ego grid, x, y, z each scaled to -1..1   (3)

a mixture per voxel of four sources: p = w_dec * softmax(decoder logits) + w_warp * onehot(warped) + w_same *
onehot(same) + w_own * softmax(own logits), the weights a softmax of four learned logits (the warp's -inf where
the warp does not reach) and `own` a class distribution the gate predicts itself (what no source says: the free
space a mover left). The output is log p (class log-probabilities; argmax = the forecast). Its last layers start at
zero: an untrained gate weighs the sources equally (close to `ego_warp_fill` where the decoder is unsure).
It is trained in the world model's loss (`TransVQVAE.forward_train`: the negative log-likelihood of the gated
forecast of one future frame per window, from the rollout along the true path) and so learns where the warped
frame is right (static structure), where it is wrong (a mover's old place) and what the cells entering the view
hold. 1x1x1 convolutions (per voxel, no spatial context), unless `context` > 0: that many residual 3x3x3
convolutions on the hidden features, so each voxel's weights also see its neighbours' (a mover's edge, a wall
behind). `positions` lets the weights depend on where the voxel is (the cells entering the view lie at the grid's
edges, the ground at its lower levels): per voxel alone the gate cannot tell a surface the camera sees at the edge
(where the last frame at the same place is usually right) from the inside of a block (where the decoder is).

`balance` picks what the loss averages (`VoxelGate.nll`): 'voxel' (every voxel counts once: mostly free space and
ground) or 'class' (the mean over the classes present in the target frame of each class's mean NLL: every class
counts once, as in mIoU). `visible_weight` w > 0 adds w x the same loss over the camera-visible voxels of the target
frame alone (the voxel set Occ3D scores first: surfaces the camera sees, a few % of the grid, which the all-voxel
loss barely weighs); training then reads the sessions' masks (`evaluation.visibility`).
Since the gate's loss reaches no weight of the world model (its inputs are detached), the gate can also be trained
alone on a finished world model (`model.freeze_transformer` and `model.freeze_pose`: only the gate's weights
train; docs/model.md "gate", measured in docs/training.md "The gate's ablations").

Frames: every grid is the ego grid of its forecast frame (X forward, Y left, Z up); labels are class ids.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor


def one_hot(labels: Tensor, num_classes: int, where: Tensor | None = None) -> Tensor:
    """(B, X, Y, Z) labels -> (B, C, X, Y, Z) float one-hot, zero where `where` (B, X, Y, Z) is False."""
    out = F.one_hot(labels.long().clamp(0, num_classes - 1), num_classes).permute(0, 4, 1, 2, 3).float()
    return out if where is None else out * where[:, None].float()


def grid_positions(batch: int, shape, device) -> Tensor:
    """(batch, 3, X, Y, Z): each voxel's x, y, z index scaled to -1..1 (the ego grid's axes)."""
    axes = [torch.linspace(-1.0, 1.0, int(n), device=device) for n in shape]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"))[None].expand(batch, -1, -1, -1, -1)


class VoxelGate(nn.Module):
    def __init__(self, num_classes: int, hidden_channels: int = 16, loss_weight: float = 1.0, balance: str = "voxel",
                 context: int = 0, visible_weight: float = 0.0, positions: bool = False, **unused):
        super().__init__()
        if unused:
            raise TypeError(f"model.plan.gate: unknown keys {sorted(unused)} (known: hidden_channels, loss_weight, "
                            "balance, context, visible_weight, positions)")
        if not float(visible_weight) >= 0.0:
            raise ValueError(f"model.plan.gate.visible_weight must be >= 0 (got {visible_weight!r})")
        if int(context) != context or not 0 <= int(context) <= 4:
            raise ValueError(f"model.plan.gate.context must be a whole number of 3x3x3 layers, 0..4 (got {context!r})")
        if not float(loss_weight) > 0.0:
            raise ValueError(f"model.plan.gate.loss_weight must be > 0 (got {loss_weight!r})")
        if balance not in ("voxel", "class"):
            raise ValueError(f"model.plan.gate.balance must be 'voxel' or 'class' (got {balance!r})")
        c = int(num_classes)
        self.num_classes, self.loss_weight, self.balance = c, float(loss_weight), balance
        self.visible_weight, self.positions = float(visible_weight), bool(positions)
        self.hidden = nn.Conv3d(3 * c + 1 + (3 if self.positions else 0), int(hidden_channels), 1)
        self.context = nn.ModuleList(nn.Conv3d(int(hidden_channels), int(hidden_channels), 3, padding=1)
                                     for _ in range(int(context)))
        self.mix = nn.Conv3d(int(hidden_channels), 4, 1)   # decoder, warped last frame, same place, own
        self.own = nn.Conv3d(int(hidden_channels), c, 1)
        for layer in (self.mix, self.own):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, logits: Tensor, warped: Tensor, valid: Tensor, same: Tensor) -> Tensor:
        """logits (B, C, X, Y, Z) of the decoder; warped, same (B, X, Y, Z) labels; valid (B, X, Y, Z) bool ->
        class log-probabilities (B, C, X, Y, Z) of the gated forecast."""
        c = self.num_classes
        probs = logits.float().softmax(1)
        w, s = one_hot(warped, c, valid), one_hot(same, c)
        inputs = [probs, w, s, valid[:, None].float()]
        if self.positions:
            inputs.append(grid_positions(probs.shape[0], probs.shape[2:], probs.device))
        h = F.relu(self.hidden(torch.cat(inputs, dim=1)))
        for layer in self.context:
            h = h + F.relu(layer(h))
        mix = self.mix(h)
        mix = torch.cat([mix[:, :1], mix[:, 1:2].masked_fill(~valid[:, None], float("-inf")), mix[:, 2:]], dim=1)
        weight = mix.softmax(1)
        p = (weight[:, :1] * probs + weight[:, 1:2] * w + weight[:, 2:3] * s
             + weight[:, 3:] * self.own(h).softmax(1))
        return torch.log(p.clamp_min(1e-6))

    def nll(self, log_probs: Tensor, target: Tensor, visible: Tensor | None = None) -> Tensor:
        """log_probs (B, C, X, Y, Z) of `forward`, target (B, X, Y, Z) class ids -> the scalar loss `balance` names:
        'voxel' the mean NLL over voxels; 'class' the mean over the classes present in target of the mean NLL of
        that class's voxels; plus, with visible_weight > 0, visible_weight x the same over the voxels `visible`
        (B, X, Y, Z) bool marks (the camera-visible ones)."""
        per_voxel = F.nll_loss(log_probs, target.long(), reduction="none")
        loss = self._reduce(per_voxel, target, None)
        if self.visible_weight > 0.0:
            if visible is None:
                raise ValueError("model.plan.gate.visible_weight > 0 needs the visibility masks of the target frames "
                                 "(set evaluation.visibility, e.g. 'camera', and generate sessions with sensors)")
            loss = loss + self.visible_weight * self._reduce(per_voxel, target, visible.to(per_voxel.device))
        return loss

    def _reduce(self, per_voxel: Tensor, target: Tensor, where: Tensor | None) -> Tensor:
        nll, labels = per_voxel.flatten(), target.flatten().long().clamp(0, self.num_classes - 1)
        if where is not None:
            keep = where.flatten().bool()
            if not bool(keep.any()):
                return nll.sum() * 0.0  # no visible voxel in this frame: nothing to add
            nll, labels = nll[keep], labels[keep]
        if self.balance == "voxel":
            return nll.mean()
        sums = torch.zeros(self.num_classes, dtype=nll.dtype, device=nll.device).index_add_(0, labels, nll)
        counts = torch.bincount(labels, minlength=self.num_classes)
        present = counts > 0
        return (sums[present] / counts[present]).mean()
