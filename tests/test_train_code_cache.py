"""Stage 2 with a frozen tokenizer encodes each training frame once (training/code_cache.py), same step."""

from __future__ import annotations

import torch

from occworld_tokyo.model import build_model
from occworld_tokyo.model.build import tiny_model_config
from occworld_tokyo.training.code_cache import FrameCodes
from occworld_tokyo.training.stages import stage_for


def _model(**kw):
    torch.manual_seed(0)
    model = build_model(tiny_model_config(grid_size=(32, 32, 8), history_frames=2, future_frames=2, **kw))
    model.vae.tokenizer_grid = model.vae.grid_signature()
    return model


def _frames(n: int = 8) -> torch.Tensor:
    g = torch.Generator().manual_seed(2)
    return torch.randint(0, 14, (n, 32, 32, 8), generator=g)


def test_cached_codes_give_the_same_step_and_each_frame_is_encoded_once():
    model = _model().train()
    frames = _frames()
    starts = torch.tensor([[0, 0], [0, 2], [0, 1], [0, 3]])       # overlapping windows of 4 frames of part 0
    occ = torch.stack([frames[s:s + 4] for _, s in starts.tolist()])
    poses = torch.randn(4, 4, 13)
    cache = FrameCodes(model.vae)
    codes = cache.lookup(occ, starts)
    assert cache.encoded == 7 and len(cache) == 7                  # frames 0..6, once each
    _, direct = model.vae.encode(occ)
    assert torch.equal(codes, direct)
    again = cache.lookup(occ[:2], starts[:2])
    assert cache.encoded == 7 and torch.equal(again, direct[:2])   # looked up, not encoded
    torch.manual_seed(5)
    ref = model.forward_train(occ, poses)
    torch.manual_seed(5)
    fast = model.forward_train(occ, poses, codes=codes)
    for key in ("loss", "ce_codes", "pose_loss", "code_acc"):
        assert torch.allclose(ref[key], fast[key], atol=1e-5), key
    assert model.vae.training is False  # the frozen tokenizer stays in eval mode


def test_the_world_model_stage_caches_only_a_frozen_tokenizer():
    frozen, trained = _model(), _model(freeze_vae=False)
    batch = {"occ": torch.stack([_frames()[:4]]), "poses": torch.randn(1, 4, 13), "index": torch.tensor([[0, 0]])}
    stage = stage_for(frozen)
    stage.prepare_training(frozen)
    assert len(stage.inputs(batch, torch.device("cpu"))) == 3
    stage = stage_for(trained)
    stage.prepare_training(trained)
    assert len(stage.inputs(batch, torch.device("cpu"))) == 2     # a training tokenizer changes its codes
