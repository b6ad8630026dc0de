"""Losses: the chunked, autograd-free-sort Lovasz-softmax equals the textbook per-class formulation (value and
gradient); cross-entropy never needs a one-hot."""

from __future__ import annotations

import pytest
import torch

from occworld_tokyo.model.losses import code_ce, lovasz_softmax, occupancy_ce


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _textbook_lovasz(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    probs = logits.softmax(1)
    losses = []
    for c in range(probs.shape[1]):
        fg = (target == c).reshape(-1).float()
        if fg.sum() == 0:
            continue
        errors = (fg - probs[:, c].reshape(-1)).abs()
        errors_sorted, perm = torch.sort(errors, descending=True)
        fg_sorted = fg[perm]
        gts = fg_sorted.sum()
        jaccard = 1 - (gts - fg_sorted.cumsum(0)) / (gts + (1 - fg_sorted).cumsum(0))
        jaccard[1:] = jaccard[1:] - jaccard[:-1].clone()
        losses.append(torch.dot(errors_sorted, jaccard))
    return torch.stack(losses).mean()


@pytest.mark.parametrize("chunk_elems", [1, 500, 2 ** 25])
def test_lovasz_matches_textbook_value_and_gradient(chunk_elems):
    torch.manual_seed(0)
    logits = torch.randn(2, 6, 8, 7, 3, requires_grad=True)
    target = torch.randint(0, 5, (2, 8, 7, 3))  # class 5 absent
    ours = lovasz_softmax(logits, target, chunk_elems=chunk_elems)
    ours.backward()
    grad_ours, logits.grad = logits.grad.clone(), None
    ref = _textbook_lovasz(logits, target)
    ref.backward()
    assert torch.allclose(ours, ref, atol=1e-6)
    assert torch.allclose(grad_ours, logits.grad, atol=1e-6)


def test_lovasz_perfect_prediction_is_zero_and_wrong_is_positive():
    target = torch.randint(0, 3, (1, 4, 4, 2))
    perfect = torch.nn.functional.one_hot(target, 3).permute(0, 4, 1, 2, 3).float() * 50
    assert float(lovasz_softmax(perfect, target)) < 1e-6
    assert float(lovasz_softmax(-perfect, target)) > 0.5


def test_cross_entropies():
    logits = torch.zeros(1, 4, 2, 2, 2)
    target = torch.zeros(1, 2, 2, 2, dtype=torch.long)
    assert torch.isclose(occupancy_ce(logits, target), torch.log(torch.tensor(4.0)))
    code_logits = torch.zeros(1, 3, 8, 2, 2)
    assert torch.isclose(code_ce(code_logits, torch.zeros(1, 3, 2, 2, dtype=torch.long)), torch.log(torch.tensor(8.0)))
