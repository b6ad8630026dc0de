"""The learned voxel gate (model/gate.py): trained in the loss, it learns where the warped last frame is right."""

from __future__ import annotations

import math

import pytest
import torch

from occworld_tokyo.labels import BUILDING, TERRAIN, VEHICLE
from occworld_tokyo.model import build_model
from occworld_tokyo.model.build import tiny_model_config
from occworld_tokyo.model.gate import VoxelGate

C = 14
PCR = [-12.8, -12.8, -2.0, 12.8, 12.8, 8.0]


def _scene(b: int, shift: int, g: torch.Generator):
    """A static scene (terrain, a building) and a car that moved `shift` voxels along x since the last frame."""
    occ = torch.zeros(b, 16, 16, 4, dtype=torch.long)
    occ[..., 0] = TERRAIN
    occ[:, 2:6, 10:14, 1:4] = BUILDING
    last, now = occ.clone(), occ.clone()
    x0 = torch.randint(0, 6, (b,), generator=g)
    for i in range(b):
        last[i, x0[i]:x0[i] + 3, 4:6, 1] = VEHICLE
        now[i, x0[i] + shift:x0[i] + shift + 3, 4:6, 1] = VEHICLE
    return last, now


def test_gate_learns_to_trust_the_warp_on_static_voxels_and_the_decoder_on_the_mover():
    """Hand-built scene: the warped last frame is right everywhere but where the car was and is; the decoder knows
    the car's new place but is noisy elsewhere (it never invents a car). Trained alone, the gate beats both of its
    sources: per voxel it learns whom to believe from what each says."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    gate = VoxelGate(C, hidden_channels=16)
    opt = torch.optim.Adam(gate.parameters(), lr=0.02)

    def batch():
        last, now = _scene(4, 4, g)
        noisy = now.clone()
        flip = torch.rand(now.shape, generator=g) < 0.3                    # the decoder: 30 % of voxels wrong
        wrong = torch.randint(0, C - 1, (int(flip.sum()),), generator=g)
        noisy[flip] = wrong + (wrong >= VEHICLE).long()                    # ... but never a car
        noisy[now == VEHICLE] = VEHICLE                                    # and it sees where the car is
        logits = torch.nn.functional.one_hot(noisy, C).permute(0, 4, 1, 2, 3).float() * 3.0
        return logits, last, torch.ones_like(last, dtype=torch.bool), last, now

    for _ in range(150):
        logits, warped, valid, same, target = batch()
        loss = torch.nn.functional.nll_loss(gate(logits, warped, valid, same), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    logits, warped, valid, same, target = batch()
    with torch.no_grad():
        pred = gate(logits, warped, valid, same).argmax(1)
    acc = lambda p: float((p == target).float().mean())  # noqa: E731
    car = (target == VEHICLE) | (warped == VEHICLE)
    assert acc(pred) > 0.99 > max(acc(warped), acc(logits.argmax(1)))
    assert float((pred[car] == target[car]).float().mean()) > 0.9 > float((warped[car] == target[car]).float().mean())


def _gated_model():
    torch.manual_seed(0)
    cfg = tiny_model_config(grid_size=(32, 32, 8), plan=dict(enabled=True, point_cloud_range=PCR,
                                                             gate=dict(hidden_channels=8)))
    return build_model(cfg)


def test_gate_is_trained_in_the_world_model_loss_and_used_along_a_plan():
    model = _gated_model()
    assert model.gated and sum(p.numel() for p in model.plan.gate.parameters()) > 0
    g = torch.Generator().manual_seed(2)
    occ = torch.randint(0, C, (2, 4, 32, 32, 8), generator=g)
    poses = torch.zeros(2, 4, 13)
    poses[..., 6] = 1.0
    poses[..., 0] = torch.arange(4.0) - 1.0
    warp = {"warped": occ[:, 2:].clone(), "valid": torch.ones(2, 2, 32, 32, 8, dtype=torch.bool), "same": occ[:, 1]}
    model.train()
    out = model.forward_train(occ, poses, warp=warp)
    assert "gate_nll" in out and math.isfinite(float(out["gate_nll"]))
    out["loss"].backward()
    assert model.plan.gate.mix.weight.grad is not None and model.plan.gate.mix.weight.grad.abs().sum() > 0
    model.eval()
    plain = model.rollout(occ[:, :2], poses[:, :2], 2, plan=poses[:, 2:])
    gated = model.rollout(occ[:, :2], poses[:, :2], 2, plan=poses[:, 2:], warp=warp)
    assert torch.equal(gated["occ_ungated"], plain["occ"]) and "occ_ungated" not in plain
    # the untrained gate weighs decoder, warp and same-place equally: where warp and same agree it takes them
    agree = warp["warped"] == warp["same"][:, None]
    assert float((gated["occ"][agree] == warp["warped"][agree]).float().mean()) > 0.99


def test_class_balanced_gate_loss_counts_every_class_once():
    """balance='class': the mean over the target's classes of each class's mean NLL (hand-computed), so a rare
    class weighs as much as free space; 'voxel' is the plain mean."""
    gate = VoxelGate(3, balance="class")
    target = torch.tensor([0, 0, 0, 1]).view(1, 4, 1, 1)
    probs = torch.tensor([[0.5, 0.25, 0.25], [0.5, 0.25, 0.25], [0.5, 0.25, 0.25], [0.5, 0.25, 0.25]])
    logp = probs.log().T.reshape(1, 3, 4, 1, 1)
    nll0, nll1 = -math.log(0.5), -math.log(0.25)
    assert math.isclose(float(gate.nll(logp, target)), (nll0 + nll1) / 2, rel_tol=1e-6)
    assert math.isclose(float(VoxelGate(3).nll(logp, target)), (3 * nll0 + nll1) / 4, rel_tol=1e-6)
    with pytest.raises(ValueError, match="balance must be 'voxel' or 'class'"):
        VoxelGate(3, balance="pixel")


def test_gate_trains_alone_on_a_frozen_world_model():
    """freeze_transformer + freeze_pose (+ the frozen tokenizer): the gate's weights are the only ones the optimizer
    gets and the only ones the loss reaches, so a finished world model's forecast is unchanged by training it."""
    model = build_model(tiny_model_config(grid_size=(32, 32, 8), freeze_transformer=True, freeze_pose=True, plan=dict(
        enabled=True, point_cloud_range=PCR, gate=dict(hidden_channels=8, balance="class"))))
    gate_ids = {id(p) for p in model.plan.gate.parameters()}
    assert {id(p) for p in model.trainable_parameters()} == gate_ids
    g = torch.Generator().manual_seed(3)
    occ = torch.randint(0, C, (2, 4, 32, 32, 8), generator=g)
    poses = torch.zeros(2, 4, 13)
    poses[..., 6] = 1.0
    warp = {"warped": occ[:, 2:].clone(), "valid": torch.ones(2, 2, 32, 32, 8, dtype=torch.bool), "same": occ[:, 1]}
    model.train()
    assert model.plan.gate.training and not model.transformer.training
    model.forward_train(occ, poses, warp=warp)["loss"].backward()
    touched = {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert touched and all(n.startswith("plan.gate.") for n in touched)


def test_gate_context_lets_a_voxel_see_its_neighbours():
    """context=1: changing one voxel's inputs changes its neighbours' output, and only within one voxel (3x3x3);
    context=0 keeps the gate per voxel."""
    torch.manual_seed(0)
    for context, reach in ((0, 0), (1, 1)):
        gate = VoxelGate(C, hidden_channels=8, context=context)
        for layer in (gate.mix, gate.own):  # past the zero start, as after training
            torch.nn.init.normal_(layer.weight)
        logits = torch.randn(1, C, 8, 8, 4)
        warped = torch.randint(0, C, (1, 8, 8, 4))
        valid = torch.ones(1, 8, 8, 4, dtype=torch.bool)
        a = gate(logits, warped, valid, warped)
        logits2 = logits.clone()
        logits2[0, 3, 4, 4, 2] += 5.0
        changed = (gate(logits2, warped, valid, warped) - a).abs().sum(1)[0] > 1e-6
        idx = changed.nonzero()
        assert bool(changed[4, 4, 2]) and int((idx - torch.tensor([4, 4, 2])).abs().max()) == reach
    with pytest.raises(ValueError, match="context"):
        VoxelGate(C, context=9)


def test_visible_weight_adds_the_loss_over_the_camera_visible_voxels():
    """visible_weight w: loss = all-voxel loss + w x the same loss over the visible voxels alone (hand-computed);
    without the masks it is refused, naming the setting; a frame with no visible voxel adds nothing."""
    target = torch.tensor([0, 0, 0, 1]).view(1, 4, 1, 1)
    probs = torch.tensor([[0.5, 0.25, 0.25], [0.8, 0.1, 0.1], [0.5, 0.25, 0.25], [0.5, 0.25, 0.25]])
    logp = probs.log().T.reshape(1, 3, 4, 1, 1)
    visible = torch.tensor([False, True, False, True]).view(1, 4, 1, 1)
    nll = [-math.log(0.5), -math.log(0.8), -math.log(0.5), -math.log(0.25)]
    gate = VoxelGate(3, visible_weight=2.0)
    assert math.isclose(float(gate.nll(logp, target, visible)), sum(nll) / 4 + 2.0 * (nll[1] + nll[3]) / 2,
                        rel_tol=1e-6)
    assert math.isclose(float(gate.nll(logp, target, torch.zeros_like(visible))), sum(nll) / 4, rel_tol=1e-6)
    with pytest.raises(ValueError, match="evaluation.visibility"):
        gate.nll(logp, target)
    with pytest.raises(ValueError, match="visible_weight"):
        VoxelGate(3, visible_weight=-1.0)


def test_a_gate_with_visible_weight_needs_visibility_in_the_config():
    from occworld_tokyo.config import ConfigError
    from occworld_tokyo.training.stages import stage_for

    model = build_model(tiny_model_config(grid_size=(32, 32, 8), plan=dict(
        enabled=True, point_cloud_range=PCR, gate=dict(hidden_channels=8, visible_weight=1.0))))
    stage = stage_for(model)
    assert stage.train_visibility(model, {"evaluation": {"visibility": "camera"}}) == "camera"
    with pytest.raises(ConfigError, match="visible_weight"):
        stage.train_visibility(model, {"evaluation": {"visibility": None}})
    assert stage.train_visibility(_gated_model(), {"evaluation": {"visibility": None}}) is None


def test_gate_positions_let_the_weights_depend_on_the_place():
    """positions=True: the same inputs at two places of the grid can be weighed differently (edge vs centre);
    without it every voxel with the same inputs gets the same output."""
    from occworld_tokyo.model.gate import grid_positions

    pos = grid_positions(2, (4, 3, 2), torch.device("cpu"))
    assert pos.shape == (2, 3, 4, 3, 2) and float(pos[0, 0, 0, 0, 0]) == -1.0 and float(pos[0, 2, 0, 0, 1]) == 1.0
    logits = torch.zeros(1, C, 8, 8, 4)
    logits[:, 3] = 2.0                       # the same decoder output everywhere
    warped = torch.full((1, 8, 8, 4), 5)
    valid = torch.ones(1, 8, 8, 4, dtype=torch.bool)
    for positions in (False, True):
        torch.manual_seed(1)
        gate = VoxelGate(C, hidden_channels=8, positions=positions)
        for layer in (gate.mix, gate.own):
            torch.nn.init.normal_(layer.weight)
        out = gate(logits, warped, valid, warped).detach()
        spread = float((out - out[..., :1, :1, :1]).abs().max())
        assert (spread > 1e-4) == positions
