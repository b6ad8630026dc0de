"""The CPU paths of model/cpu_ops.py and the tokenizer's transposed-conv upsampling compute what the plain PyTorch
calls compute (values and gradients, to float32 rounding): they replace them inside the released computation."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from occworld_tokyo.model.cpu_ops import Embedding, Linear, attention, linear
from occworld_tokyo.model.vae import Upsample

pytestmark = pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="no oneDNN in this PyTorch")


def _grads(out: torch.Tensor, inputs, seed: int = 0):
    g = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed))
    return torch.autograd.grad(out, inputs, g)


def _assert_close(a, b, rtol=1e-5, atol=1e-5):
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=rtol, atol=atol * max(1.0, (float(y.detach().abs().max()) if y.numel() else 0.0)))


@pytest.mark.parametrize("shape", [(7, 16), (3, 5, 16), (2, 3, 4, 16), (0, 16)])
def test_linear_equals_f_linear(shape):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(shape, generator=gen, requires_grad=True)
    w = torch.randn(24, 16, generator=gen, requires_grad=True)
    b = torch.randn(24, generator=gen, requires_grad=True)
    mine, ref = linear(x, w, b), F.linear(x, w, b)
    assert mine.shape == ref.shape == (*shape[:-1], 24)
    _assert_close([mine], [ref])
    if x.numel():
        _assert_close(_grads(mine, [x, w, b]), _grads(ref, [x, w, b]))
        assert not torch.equal(linear(x, w, b * 0), ref)   # the bias is applied


def test_linear_module_keeps_nn_linear_names_and_values():
    torch.manual_seed(0)
    mine = Linear(8, 4)
    ref = nn.Linear(8, 4)
    ref.load_state_dict(mine.state_dict())
    assert set(mine.state_dict()) == {"weight", "bias"}
    x = torch.randn(5, 8)
    _assert_close([mine(x)], [ref(x)])


def test_linear_non_contiguous_input():
    x = torch.randn(6, 10, 16).transpose(0, 1)   # rows not contiguous: reshaped (copied) first
    w, b = torch.randn(8, 16), torch.randn(8)
    _assert_close([linear(x, w, b)], [F.linear(x, w, b)])


@pytest.mark.parametrize("positions", [37, 300])
def test_attention_equals_sdpa(positions):
    gen = torch.Generator().manual_seed(2)
    q, k, v = (torch.randn(2, positions, 32, generator=gen, requires_grad=True) for _ in range(3))
    mine, ref = attention(q, k, v), F.scaled_dot_product_attention(q, k, v)
    _assert_close([mine], [ref])
    _assert_close(_grads(mine, [q, k, v]), _grads(ref, [q, k, v]), rtol=1e-4, atol=1e-5)


def test_attention_beyond_max_positions_is_sdpa():
    q, k, v = (torch.randn(1, 20, 8) for _ in range(3))
    assert torch.equal(attention(q, k, v, max_positions=10), F.scaled_dot_product_attention(q, k, v))


def test_embedding_gradient_equals_nn_embedding():
    torch.manual_seed(3)
    mine = Embedding(18, 8)
    ref = nn.Embedding(18, 8)
    ref.load_state_dict(mine.state_dict())
    labels = torch.randint(0, 12, (2, 30, 30, 4))   # classes 12..16 unused
    labels[0] = 17                                          # a class used many times
    out_mine, out_ref = mine(labels), ref(labels)
    assert torch.equal(out_mine, out_ref)
    _assert_close(_grads(out_mine, [mine.weight]), _grads(out_ref, [ref.weight]))
    unused = torch.ones(18, dtype=torch.bool)
    unused[labels.unique()] = False
    assert unused.any() and not _grads(mine(labels), [mine.weight])[0][unused].any()


@pytest.mark.parametrize("channels_last", [False, True])
def test_upsample_transposed_conv_equals_nearest_then_conv(channels_last):
    torch.manual_seed(4)
    up = Upsample(16)
    x = torch.randn(2, 16, 9, 7)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    params = [x, up.conv.weight, up.conv.bias]
    mine = up(x, (18, 14))
    ref = up.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))
    assert mine.shape == ref.shape == (2, 16, 18, 14)
    _assert_close([mine], [ref])
    _assert_close(_grads(mine, params), _grads(ref, params))


def test_upsample_to_an_odd_size_pads_as_released():
    torch.manual_seed(5)
    up = Upsample(4)
    x = torch.randn(1, 4, 3, 3)
    out = up(x, (7, 7))   # 3 -> 6, then padded by (0, 1) on each axis before the conv
    padded = F.pad(F.interpolate(x, scale_factor=2.0, mode="nearest"), [0, 1, 0, 1])
    _assert_close([out], [up.conv(padded)])
