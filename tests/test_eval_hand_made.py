"""Hand-made methods (evaluation/hand_made.py): fixed logits on the model's decoded forecast, scored by name."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from occworld_tokyo.evaluation.baselines import ego_warp, fill_outside
from occworld_tokyo.evaluation.hand_made import decode_with_priors, method_names
from occworld_tokyo.grid import EgoFrame, GridSpec
from occworld_tokyo.model import build_model
from occworld_tokyo.model.build import tiny_model_config
from occworld_tokyo.model.plan import pose_yaw

PCR = [-12.8, -12.8, -2.0, 12.8, 12.8, 8.0]
GRID = GridSpec(x_range=(-12.8, 12.8), y_range=(-12.8, 12.8), z_range=(-2.0, 8.0), voxel_size=(0.8, 0.8, 1.25))


def _pose(x: float = 0.0, y: float = 0.0, yaw: float = 0.0) -> torch.Tensor:
    p = torch.zeros(13)
    p[0], p[1] = x, y
    p[5], p[6] = math.sin(yaw / 2), math.cos(yaw / 2)
    return p


def _model(plan: bool = True) -> torch.nn.Module:
    torch.manual_seed(0)
    extra = dict(plan=dict(enabled=True, point_cloud_range=PCR)) if plan else {}
    return build_model(tiny_model_config(grid_size=(32, 32, 8), **extra)).eval()


def _history(b: int = 1):
    g = torch.Generator().manual_seed(1)
    occ = torch.randint(0, 14, (b, 2, 32, 32, 8), generator=g)
    poses = torch.stack([_pose(x=-1.0), _pose()])[None].repeat(b, 1, 1)
    return occ, poses


def _warp(occ_last: np.ndarray, plan: torch.Tensor):
    frames = [EgoFrame(float(p[0]), float(p[1]), float(pose_yaw(p)), 0.0) for p in plan]
    warped, valid = ego_warp(occ_last, EgoFrame(0.0, 0.0, 0.0, 0.0), frames, GRID, return_valid=True)
    return fill_outside(warped, valid, occ_last), warped, valid


def test_voxel_copy_is_the_ego_warp_where_it_reaches_and_the_model_elsewhere():
    model = _model()
    occ, poses = _history()
    plan = torch.stack([_pose(x=3.2), _pose(x=6.4, y=1.6, yaw=0.3)])[None]
    roll = model.rollout(occ, poses, 2, plan=plan)
    filled, warped, valid = _warp(occ[0, -1].numpy(), plan[0])
    args = dict(warped=torch.from_numpy(filled)[None], valid=torch.from_numpy(valid)[None])
    copy = decode_with_priors(model, roll["codes"], occ, voxel_copy=1e4, **args)[0].numpy()
    assert np.array_equal(copy[valid], warped[valid])
    assert (~valid).any()
    assert np.array_equal(copy[~valid], roll["occ"][0].numpy()[~valid])      # entering cells: the model's own
    assert (roll["occ"][0].numpy()[valid] != warped[valid]).mean() > 0.5      # (the model alone is not the copy)
    fill = decode_with_priors(model, roll["codes"], occ, voxel_copy=1e4, fill_copy=1e4, **args)[0].numpy()
    assert np.array_equal(fill, filled)                                       # dominant fill: ego_warp_fill
    plain = decode_with_priors(model, roll["codes"], occ)
    assert torch.equal(plain, roll["occ"])                                    # no prior: the model's rollout
    with pytest.raises(ValueError, match="voxel_copy needs"):
        decode_with_priors(model, roll["codes"], occ, voxel_copy=1.0)


def test_unseen_class_prior_keeps_the_forecast_to_the_classes_the_history_shows():
    model = _model(plan=False)
    g = torch.Generator().manual_seed(4)
    shown = torch.tensor([0, 5, 9])
    occ = shown[torch.randint(0, 3, (2, 2, 32, 32, 8), generator=g)]
    occ[1, :, :4] = 12                                      # the second window also shows class 12
    _, poses = _history(b=2)
    roll = model.rollout(occ, poses, 2)
    assert not set(roll["occ"].unique().tolist()) <= {0, 5, 9, 12}   # the untrained model invents classes
    limited = decode_with_priors(model, roll["codes"], occ, unseen_class_logit=1e4)
    assert set(limited[0].unique().tolist()) <= {0, 5, 9}
    assert set(limited[1].unique().tolist()) <= {0, 5, 9, 12}
    assert torch.equal(decode_with_priors(model, roll["codes"], occ, unseen_class_logit=0.0), roll["occ"])


def test_method_names_follow_the_evaluation_config():
    cfg = dict(voxel_copy=1000.0, fill_copy=2.0, unseen_class_logit=8.0)
    assert method_names(cfg, True) == ["world_model_plan+voxel_copy", "world_model+unseen_prior"]
    assert method_names(cfg, False) == ["world_model+unseen_prior"]
    assert method_names(dict(voxel_copy=None, unseen_class_logit=None), True) == []


def test_hand_made_methods_from_the_rollouts_logits_equal_a_second_decoding():
    """The evaluation decodes each forecast frame once: `rollout(keep_logits=True)` keeps the decoder's logits, its
    'occ' is their argmax (as without them), and the priors added to them give what decoding the codes again gives."""
    model = _model()
    occ, poses = _history()
    plan = torch.stack([_pose(x=3.2), _pose(x=6.4, y=1.6, yaw=0.3)])[None]
    kept = model.rollout(occ, poses, 2, plan=plan, keep_logits=True)
    plain = model.rollout(occ, poses, 2, plan=plan)
    assert torch.equal(kept["occ"], plain["occ"]) and kept["logits"].shape[:3] == (1, 2, model.vae.num_classes)
    filled, _, valid = _warp(occ[0, -1].numpy(), plan[0])
    args = dict(warped=torch.from_numpy(filled)[None], valid=torch.from_numpy(valid)[None], voxel_copy=3.0,
                fill_copy=1.0, unseen_class_logit=2.0)
    assert torch.equal(decode_with_priors(model, None, occ, logits=kept["logits"], **args),
                       decode_with_priors(model, plain["codes"], occ, **args))
    with pytest.raises(ValueError, match="codes or their decoded logits"):
        decode_with_priors(model, None, occ)
