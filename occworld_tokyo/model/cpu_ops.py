"""CPU paths for the products and the gather where PyTorch's default CPU kernels are slow: the same results
(to float32 rounding), computed another way. Off the CPU (or without oneDNN) each is the plain PyTorch call.

* `linear` / `Linear`: `F.linear` through oneDNN's 1x1 convolution instead of the BLAS library (MKL in the
  PyTorch wheels). On this project's CPUs (AMD EPYC, AVX-512) MKL's sgemm reaches 100-180 GFLOP/s on the
  transformer's shapes on 2 threads, oneDNN's 1x1 convolution on the same operands 240-470 GFLOP/s forward and
  160-320 with the backward (MKL picks its code path by CPU vendor, oneDNN by instruction set). Layout: rows (N, K)
  contiguous are a channels_last image (1, K, N, 1), so a 1x1 convolution with the weight (M, K, 1, 1) is the
  product (N, K) x (K, M), and its channels_last output (1, M, N, 1) is the (N, M) result without a copy;
  autograd goes through the convolution's backward (also oneDNN).
* `attention`: single-head softmax attention as two `linear` products (the flash kernel's products are MKL's).
* `Embedding`: nn.Embedding whose backward sums the gradient rows with `index_add_` (the default CPU backward is
  3x slower for a million labels into a few classes).

Model-level effect, measured against the released code: docs/benchmarks.md, "Model against the released OccWorld".
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor


def _use_onednn(*tensors: Tensor) -> bool:
    return (torch.backends.mkldnn.is_available()
            and all(t.device.type == "cpu" and t.dtype == torch.float32 for t in tensors))


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """`F.linear(x, weight, bias)`: x (..., K), weight (M, K), bias (M,) -> (..., M)."""
    if not _use_onednn(x, weight) or x.numel() == 0:
        return F.linear(x, weight, bias)
    k = x.shape[-1]
    image = x.reshape(1, -1, 1, k).permute(0, 3, 1, 2)          # (1, K, N, 1), channels_last
    out = F.conv2d(image, weight[:, :, None, None], bias)        # (1, M, N, 1), channels_last
    return out.permute(0, 2, 3, 1).reshape(*x.shape[:-1], weight.shape[0])


def attention(q: Tensor, k: Tensor, v: Tensor, max_positions: int = 4096) -> Tensor:
    """softmax(q k^T / sqrt(c)) v, single head, no mask: q, k, v (N, L, c) -> (N, L, c), one (L, L) score matrix
    per entry at a time (two products through `linear`). Faster than the flash kernel (whose products are MKL's)
    at the tokenizer's 2,500 positions (1.7x forward + backward); beyond `max_positions` the (L, L) matrices cost
    too much memory and the flash kernel runs."""
    if not _use_onednn(q, k, v) or q.shape[1] > max_positions:
        return F.scaled_dot_product_attention(q, k, v)
    scale = q.shape[-1] ** -0.5
    return torch.stack([linear(linear(qi * scale, ki).softmax(-1), vi.t()) for qi, ki, vi in zip(q, k, v)])


class _GatherRows(torch.autograd.Function):
    """F.embedding(indices, table) with an `index_add_` backward (no max_norm, padding_idx or frequency scaling)."""

    @staticmethod
    def forward(ctx, indices: Tensor, table: Tensor) -> Tensor:
        ctx.save_for_backward(indices)
        ctx.rows = table.shape[0]
        return F.embedding(indices, table)

    @staticmethod
    def backward(ctx, grad: Tensor):
        indices, = ctx.saved_tensors
        width = grad.shape[-1]
        grad_table = grad.new_zeros(ctx.rows, width).index_add_(0, indices.reshape(-1), grad.reshape(-1, width))
        return None, grad_table


class Embedding(nn.Embedding):
    """nn.Embedding (same parameter) whose CPU backward is an `index_add_` (on a GPU, atomics on a few rows would
    serialise: there it is nn.Embedding's own)."""

    def forward(self, indices: Tensor) -> Tensor:
        if (indices.device.type != "cpu" or self.padding_idx is not None or self.max_norm is not None
                or self.scale_grad_by_freq or self.sparse):
            return super().forward(indices)
        return _GatherRows.apply(indices, self.weight)


class Linear(nn.Linear):
    """nn.Linear (same parameters and names) whose product runs through `linear`."""

    def forward(self, x: Tensor) -> Tensor:
        return linear(x, self.weight, self.bias)
