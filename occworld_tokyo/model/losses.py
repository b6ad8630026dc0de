"""Losses of the two OccWorld stages, written to stay within memory on a 200x200x121 grid.

* `occupancy_ce`: voxel cross-entropy from integer targets (no one-hot is ever built).
* `lovasz_softmax`: the Lovasz extension of the Jaccard loss (Berman et al., CVPR 2018), sorted a few classes at
  a time outside autograd, so temporaries stay within a fixed element budget and no (P, C) one-hot is built.
* `code_ce`: cross-entropy over the codebook for next-frame token prediction (stage 2).

Everything runs in float32 even under autocast (logits are upcast), which keeps fp16/bf16 training stable.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def occupancy_ce(logits: Tensor, target: Tensor, class_weights: Tensor | None = None) -> Tensor:
    """logits (N, C, X, Y, Z), target (N, X, Y, Z) int64 -> mean cross-entropy (fp32 scalar). Computed over
    (voxels, C) rows: the tokenizer's logits are a permuted view whose memory has the class axis last, so this
    needs no copy and the log-softmax runs over contiguous rows."""
    rows = logits.float().movedim(1, -1).reshape(-1, logits.shape[1])
    return F.cross_entropy(rows, target.reshape(-1), weight=class_weights)


def _lovasz_grad(fg_sorted: Tensor) -> Tensor:
    """Gradient of the Lovasz extension of the Jaccard loss w.r.t. errors sorted in decreasing order, row-wise.
    fg_sorted (k, P): 0/1 floats (foreground of each row's class) in that order."""
    gts = fg_sorted.sum(dim=1, keepdim=True)
    intersection = gts - fg_sorted.cumsum(dim=1)
    union = gts + (1.0 - fg_sorted).cumsum(dim=1)
    jaccard = 1.0 - intersection / union
    if fg_sorted.shape[1] > 1:
        jaccard[:, 1:] = jaccard[:, 1:] - jaccard[:, :-1]
    return jaccard


def lovasz_softmax(logits: Tensor, target: Tensor, classes: str = "present", chunk_elems: int = 2 ** 25) -> Tensor:
    """Lovasz-softmax loss (Berman et al. 2018) over all voxels of all frames in the batch, exact value and gradient.

    logits (N, C, X, Y, Z) raw scores, target (N, X, Y, Z) int64. `classes='present'` averages over the classes
    occurring in `target` (OccWorld's default), `'all'` over every class.

    Memory/speed: per class c the loss is sum_j g_j * |fg_j - p_j| with g the Jaccard gradient in sorted order, a
    constant of the sort. So the sorts run without autograd, several classes per call (one 2-D sort uses all
    threads), with at most `chunk_elems` elements per chunk; the graph keeps only one weight per probability
    (d loss / d p = -g for foreground, +g for background), i.e. a tensor the size of the softmax output.
    """
    probs = logits.float().movedim(1, -1).softmax(dim=-1).movedim(-1, 1)  # class-last memory for the softmax
    n, num_classes = probs.shape[:2]
    flat_target = target.reshape(-1)
    if classes == "present":
        class_ids = torch.nonzero(torch.bincount(flat_target, minlength=num_classes)).flatten().tolist()
    else:
        class_ids = list(range(num_classes))
    if not class_ids:
        return probs.sum() * 0.0
    voxels = flat_target.numel()
    per_chunk = max(1, min(len(class_ids), chunk_elems // voxels))
    weights = torch.zeros_like(probs)
    value = probs.new_zeros(())
    with torch.no_grad():
        for start in range(0, len(class_ids), per_chunk):
            group = torch.tensor(class_ids[start:start + per_chunk], device=probs.device)
            p = probs.index_select(1, group).transpose(0, 1).reshape(len(group), -1)  # (k, N*X*Y*Z)
            fg = flat_target[None, :] == group[:, None]
            errors = torch.where(fg, 1.0 - p, p)
            del p
            errors_sorted, perm = errors.sort(dim=1, descending=True)
            del errors
            grad_sorted = _lovasz_grad(fg.gather(1, perm).to(probs.dtype))
            value += (errors_sorted * grad_sorted).sum()
            del errors_sorted
            grad = torch.empty_like(grad_sorted).scatter_(1, perm, grad_sorted)
            del grad_sorted, perm
            w = torch.where(fg, -grad, grad).view(len(group), n, *probs.shape[2:]).transpose(0, 1)
            weights.index_copy_(1, group, w)
            del fg, grad, w
    surrogate = (weights * probs).sum()
    return (value + surrogate - surrogate.detach()) / len(class_ids)


def code_ce(logits: Tensor, target: Tensor) -> Tensor:
    """logits (B, F, n_codes, h, w), target codes (B, F, h, w) -> mean cross-entropy (fp32)."""
    return F.cross_entropy(logits.flatten(0, 1).float(), target.flatten(0, 1))
