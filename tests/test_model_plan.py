"""Plan conditioning (model/plan.py): the world model's forecast follows the planned path, and only then."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from occworld_tokyo.evaluation.baselines import ego_warp
from occworld_tokyo.grid import EgoFrame, GridSpec
from occworld_tokyo.model import build_model
from occworld_tokyo.model.build import tiny_model_config
from occworld_tokyo.model.plan import motion_features, pose_yaw, warp_tokens

PCR = [-12.8, -12.8, -2.0, 12.8, 12.8, 8.0]


def _pose(x: float = 0.0, y: float = 0.0, yaw: float = 0.0, vx: float = 0.0) -> torch.Tensor:
    p = torch.zeros(13)
    p[0], p[1] = x, y
    p[5], p[6] = math.sin(yaw / 2), math.cos(yaw / 2)
    p[7] = vx
    return p


def _plan_model(**plan) -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = tiny_model_config(grid_size=(32, 32, 8), plan=dict(enabled=True, point_cloud_range=PCR, **plan))
    return build_model(cfg).eval()


def _history(b: int = 1, h: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    occ = torch.randint(0, 14, (b, h, 32, 32, 8), generator=g)
    poses = torch.stack([_pose(x=-1.0 * (h - 1 - t)) for t in range(h)])[None].repeat(b, 1, 1)
    return occ, poses


def test_motion_features_frames_and_units():
    # frame t at (1, 2) facing +y (yaw 90 deg); frame t+1 one metre further along +y, turned 90 deg more
    f = motion_features(_pose(1.0, 2.0, math.pi / 2, vx=0.0), _pose(1.0, 3.0, math.pi, vx=-2.0))
    dx, dy, dz, s, c1, vx, vy, wz = f.tolist()
    assert dx == pytest.approx(1.0, abs=1e-6) and dy == pytest.approx(0.0, abs=1e-6)  # 1 m forward in frame t
    assert s == pytest.approx(1.0, abs=1e-6) and c1 == pytest.approx(-1.0, abs=1e-6)  # +90 deg yaw change
    assert vx == pytest.approx(0.0, abs=1e-6) and vy == pytest.approx(2.0, abs=1e-6)  # -x world = +y of frame t
    assert pose_yaw(_pose(yaw=0.3)).item() == pytest.approx(0.3, abs=1e-6)


def test_token_warp_agrees_with_the_ego_warp_baseline():
    """The token-space warp moves a map exactly as the ego-warp baseline moves the occupancy grid (nearest cell)."""
    grid = GridSpec(x_range=(-12.8, 12.8), y_range=(-12.8, 12.8), z_range=(-2.0, 0.5), voxel_size=(0.8, 0.8, 1.25))
    rng = np.random.default_rng(0)
    occ = rng.integers(0, 5, size=grid.shape).astype(np.uint8)
    src, dst = _pose(0.0, 0.0, 0.1), _pose(2.4, -1.6, 0.5)
    expected = ego_warp(occ, EgoFrame(0.0, 0.0, 0.1, 0.0), [EgoFrame(2.4, -1.6, 0.5, 0.0)], grid)[0]
    tokens = torch.from_numpy(occ).permute(2, 0, 1)[None].float()          # (1, Z as channels, X, Y)
    warped = warp_tokens(tokens, src[None], dst[None], (-12.8, 12.8, -12.8, 12.8))[0].permute(1, 2, 0)
    agree = (warped.numpy().astype(np.uint8) == expected).mean()
    assert agree > 0.995  # cell centres exactly on a cell border may round either way


def test_plan_changes_the_rollout_and_nothing_else_does():
    model = _plan_model(dropout=0.0)
    with torch.no_grad():
        for p in model.plan.parameters():  # a trained plan embedding (the zero init would hide it)
            p.add_(torch.randn_like(p) * 0.5)
    occ, poses = _history()
    straight = torch.stack([_pose(x=2.0 * (k + 1)) for k in range(2)])[None]
    turn = torch.stack([_pose(x=1.0, y=1.5 * (k + 1), yaw=0.8 * (k + 1)) for k in range(2)])[None]
    a = model.rollout(occ, poses, 2, plan=straight)
    b = model.rollout(occ, poses, 2, plan=straight)
    c = model.rollout(occ, poses, 2, plan=turn)
    assert torch.equal(a["code_logits"], b["code_logits"]) and torch.equal(a["occ"], b["occ"])
    assert not torch.allclose(a["code_logits"], c["code_logits"])
    assert torch.equal(a["poses"], straight) and torch.equal(c["poses"], turn)  # the plan is the path
    # without a plan: OccWorld's rollout, the same whatever was planned before
    free1, free2 = model.rollout(occ, poses, 2), model.rollout(occ, poses, 2)
    assert torch.equal(free1["code_logits"], free2["code_logits"])
    assert not torch.allclose(free1["code_logits"], a["code_logits"])


def test_untrained_plan_embedding_starts_as_the_pure_warp():
    model = _plan_model(embed=True)
    tokens = torch.randn(1, 2, 16, 16, 16)
    poses = torch.stack([_pose(), _pose(x=1.0)])[None]
    nxt = torch.stack([_pose(x=1.0), _pose(x=2.5, yaw=0.2)])[None]
    q, copy = model.plan(tokens, torch.zeros(1, 2, 16, 16, dtype=torch.long), poses, nxt)
    assert copy is None  # no copy prior unless configured
    assert torch.equal(q, warp_tokens(tokens.flatten(0, 1), poses[0], nxt[0], model.plan.extent).view_as(tokens))


def test_plan_dropout_runs_part_of_the_batch_as_occworld():
    model = _plan_model(dropout=0.5).train()
    tokens = torch.randn(64, 1, 16, 16, 16)
    poses, nxt = _pose()[None, None].repeat(64, 1, 1), _pose(x=3.0)[None, None].repeat(64, 1, 1)
    codes = torch.zeros(64, 1, 16, 16, dtype=torch.long)
    torch.manual_seed(3)
    q, _ = model._plan_queries(tokens, codes, poses, nxt)
    plain = (q == tokens).flatten(1).all(1)
    assert 15 < int(plain.sum()) < 49  # about half the windows keep OccWorld's queries
    model.eval()
    assert not (model._plan_queries(tokens, codes, poses, nxt)[0] == tokens).flatten(1).all(1).any()


def test_plan_needs_a_plan_conditioned_model_and_right_shapes():
    torch.manual_seed(0)
    plain = build_model(tiny_model_config(grid_size=(32, 32, 8))).eval()
    occ, poses = _history()
    with pytest.raises(ValueError, match="not plan-conditioned"):
        plain.rollout(occ, poses, 2, plan=torch.zeros(1, 2, 13))
    with pytest.raises(ValueError, match="expected"):
        _plan_model().rollout(occ, poses, 2, plan=torch.zeros(1, 1, 13))


def test_plan_conditioned_training_step_learns_the_plan_embedding():
    model = _plan_model(dropout=0.0).train()
    occ = torch.randint(0, 14, (2, 4, 32, 32, 8))
    poses = torch.stack([_pose(x=float(t), vx=2.0) for t in range(4)])[None].repeat(2, 1, 1)
    out = model.forward_train(occ, poses)
    out["loss"].backward()
    last = model.plan.encoder.plan_encoder[2].weight
    assert last.grad is not None and last.grad.abs().sum() > 0
    assert any(n.startswith("plan.") for n in dict(model.named_parameters()))
    # released / unconditioned checkpoints: the plan module is the only new part
    plain = build_model(tiny_model_config(grid_size=(32, 32, 8)))
    extra = set(model.state_dict()) - set(plain.state_dict())
    assert extra and all(k.startswith("plan.") for k in extra)


def test_copy_prior_forecasts_the_token_space_ego_warp_when_strong():
    """With a dominant copy logit the plan-conditioned forecast is the last frame's codes moved by the plan
    (inside the old map), whatever the untrained transformer says."""
    model = _plan_model(copy_logit=1e4)
    occ, poses = _history()
    plan = torch.stack([_pose(x=3.2), _pose(x=6.4, y=1.6, yaw=0.3)])[None]
    out = model.rollout(occ, poses, 2, plan=plan)
    _, hist_codes = model.vae.encode(occ)
    extent = model.plan.extent
    expected = hist_codes[:, -1]
    for k in range(2):
        src = poses[:, -1] if k == 0 else plan[:, k - 1]
        grid = warp_tokens((expected[:, None] + 1).float(), src, plan[:, k], extent)[:, 0].long() - 1
        inside = grid >= 0
        assert torch.equal(out["codes"][:, k][inside], grid[inside])
        assert (~inside).any() and inside.float().mean() > 0.5
        expected = out["codes"][:, k]
    # the copy logit is learned
    assert "plan.copy_logit" in dict(model.named_parameters())


def test_border_fill_continues_the_scene_into_cells_entering_the_view():
    """outside='border': a cell warped from outside frame t's map takes the nearest edge cell's code (and with a
    dominant copy logit the forecast is that everywhere); 'zeros' leaves those cells to the transformer."""
    model = _plan_model(copy_logit=1e4, outside="border")
    occ, poses = _history()
    plan = torch.stack([_pose(x=6.4), _pose(x=12.8)])[None]   # straight ahead: the far rows enter the view
    out = model.rollout(occ, poses, 2, plan=plan)
    _, hist_codes = model.vae.encode(occ)
    border = warp_tokens(hist_codes[:, -1:].float(), poses[:, -1], plan[:, 0], model.plan.extent,
                         outside="border")[:, 0].long()
    assert torch.equal(out["codes"][:, 0], border)
    inside = warp_tokens((hist_codes[:, -1:] + 1).float(), poses[:, -1], plan[:, 0], model.plan.extent)[:, 0] > 0
    assert (~inside).any()                                      # some cells did come from outside
    far_row = hist_codes[0, -1, -1]                             # the last row in x (forward) of the history map
    assert torch.equal(out["codes"][0, 0, -1], far_row)         # continued outward
    with pytest.raises(ValueError, match="outside"):
        _plan_model(outside="mirror")


def test_hand_made_keys_are_refused_in_the_model_with_where_they_went():
    """voxel_copy / fill_copy / unseen_class_logit are evaluation methods now, not model settings."""
    for key in ("voxel_copy", "fill_copy"):
        with pytest.raises(ValueError, match=f"evaluation.{key}"):
            _plan_model(**{key: 1.0})
    with pytest.raises(ValueError, match="evaluation.unseen_class_logit"):
        build_model({**tiny_model_config(grid_size=(32, 32, 8)), "unseen_class_logit": 8.0})
