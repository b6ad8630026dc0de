"""Losses of the two OccWorld stages, written to stay within memory on a 200x200x121 grid.

* `occupancy_ce`: voxel cross-entropy from integer targets (no one-hot is ever built).
* `lovasz_softmax`: the Lovasz extension of the Jaccard loss (Berman et al., CVPR 2018), one class at a time,
  so the largest temporary is one flattened class map (X*Y*Z floats per frame), never a (P, C) one-hot.
* `code_ce`: cross-entropy over the codebook for next-frame token prediction (stage 2).

Everything runs in float32 even under autocast (logits are upcast), which keeps fp16/bf16 training stable.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def occupancy_ce(logits: Tensor, target: Tensor, class_weights: Tensor | None = None) -> Tensor:
    """logits (N, C, X, Y, Z), target (N, X, Y, Z) int64 -> mean cross-entropy (fp32 scalar)."""
    return F.cross_entropy(logits.float(), target, weight=class_weights)


def _lovasz_grad(fg_sorted: Tensor) -> Tensor:
    """Gradient of the Lovasz extension w.r.t. errors sorted in decreasing order (fg_sorted: 0/1 floats)."""
    gts = fg_sorted.sum()
    intersection = gts - fg_sorted.cumsum(0)
    union = gts + (1.0 - fg_sorted).cumsum(0)
    jaccard = 1.0 - intersection / union
    if fg_sorted.numel() > 1:
        jaccard[1:] = jaccard[1:] - jaccard[:-1]
    return jaccard


def lovasz_softmax(logits: Tensor, target: Tensor, classes: str = "present") -> Tensor:
    """Lovasz-softmax loss over all voxels of all frames in the batch.

    logits (N, C, X, Y, Z) raw scores, target (N, X, Y, Z) int64. `classes='present'` averages over the classes
    that occur in `target` (OccWorld's default); `'all'` over every class.
    """
    probs = logits.float().softmax(dim=1)
    num_classes = probs.shape[1]
    losses = []
    for c in range(num_classes):
        fg = (target == c)
        if classes == "present" and not bool(fg.any()):
            continue
        fg = fg.reshape(-1).to(probs.dtype)
        errors = (fg - probs[:, c].reshape(-1)).abs()
        errors_sorted, perm = torch.sort(errors, descending=True)
        losses.append(torch.dot(errors_sorted, _lovasz_grad(fg[perm])))
        del fg, errors, errors_sorted, perm
    if not losses:
        return probs.sum() * 0.0
    return torch.stack(losses).mean()


def code_ce(logits: Tensor, target: Tensor) -> Tensor:
    """logits (B, F, n_codes, h, w), target codes (B, F, h, w) -> mean cross-entropy (fp32)."""
    return F.cross_entropy(logits.flatten(0, 1).float(), target.flatten(0, 1))
