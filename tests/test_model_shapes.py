"""Small-config behaviour of the tokenizer and the world model: shapes, causality, gradients, freezing, rollout,
determinism, autocast. Everything here uses tiny_model_config (32x32x8 grid, 2-level U-Nets)."""

from __future__ import annotations

import pytest
import torch

from occworld_tokyo.model import (TokenizerNotTrainedError, build_model, check_tokenizer_trained,
                                  mark_tokenizer_trained, tiny_model_config)

B, X, Y, Z, C = 2, 32, 32, 8, 14


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _batch(frames: int = 4, seed: int = 0, pose_dim: int = 13):
    g = torch.Generator().manual_seed(seed)
    occ = torch.randint(0, C, (B, frames, X, Y, Z), generator=g)
    poses = torch.randn(B, frames, pose_dim, generator=g)
    return occ, poses


def _world(**overrides):
    torch.manual_seed(0)
    return build_model(tiny_model_config(**overrides))


def test_tokenizer_shapes_and_losses():
    torch.manual_seed(0)
    vae = build_model({**tiny_model_config(), "type": "VAERes2D"})
    occ, _ = _batch()
    out = vae.forward_train(occ)
    for key in ("loss", "ce", "lovasz", "embed_loss"):
        assert out[key].dim() == 0 and torch.isfinite(out[key]), key
    assert out["pred"].shape == occ.shape and out["pred"].dtype == torch.int64
    assert 0 <= int(out["pred"].min()) and int(out["pred"].max()) < C
    z_q, idx = vae.encode(occ)
    assert z_q.shape == (B * 4, 16, 16, 16)        # (B*F, e_dim, h, w)
    assert idx.shape == (B, 4, 16, 16) and int(idx.max()) < 64
    labels = vae.decode_indices(idx)
    assert labels.shape == occ.shape
    # decode_indices is the argmax of the decoder applied to the codebook vectors of those indices
    with torch.no_grad():
        direct = vae.decode_latents(vae.vqvae.lookup(idx.flatten(0, 1))).argmax(1).view_as(occ)
    assert torch.equal(labels, direct)


def test_tokenizer_rejects_wrong_grid():
    vae = build_model({**tiny_model_config(), "type": "VAERes2D"})
    with pytest.raises(ValueError, match="grid"):
        vae.encode(torch.zeros(1, 1, X, Y, Z + 1, dtype=torch.long))


def test_straight_through_gradient_reaches_encoder():
    torch.manual_seed(0)
    cfg = tiny_model_config()
    cfg["vae"]["loss_weights"] = dict(ce=10.0, lovasz=1.0, embed=0.0)  # only the decoder path can reach it
    vae = build_model({**cfg, "type": "VAERes2D"})
    occ, _ = _batch()
    vae.forward_train(occ)["loss"].backward()
    grad = vae.encoder.conv_in.weight.grad
    assert grad is not None and grad.abs().sum() > 0
    assert vae.vqvae.embedding.weight.grad is None or vae.vqvae.embedding.weight.grad.abs().sum() == 0


def test_world_model_forward_train_shapes_and_grads():
    model = _world()
    model.train()
    occ, poses = _batch()
    out = model.forward_train(occ, poses)
    assert set(out) == {"loss", "ce_codes", "pose_loss", "code_acc"}
    assert all(v.dim() == 0 and torch.isfinite(v) for v in out.values())
    assert 0.0 <= float(out["code_acc"]) <= 1.0
    out["loss"].backward()
    assert model.transformer.conv_out.weight.grad.abs().sum() > 0
    assert model.pose_encoder.pose_encoder[0].weight.grad.abs().sum() > 0
    assert model.pose_decoder.pose_decoder[2].weight.grad.abs().sum() > 0


@pytest.mark.parametrize("frozen", ["freeze_vae", "freeze_transformer", "freeze_pose"])
def test_frozen_parts_get_no_gradient_and_stay_in_eval(frozen):
    flags = dict(freeze_vae=False, freeze_transformer=False, freeze_pose=False)
    flags[frozen] = True
    model = _world(**flags)
    parts = {"freeze_vae": [model.vae], "freeze_transformer": [model.transformer],
             "freeze_pose": [model.pose_encoder, model.pose_decoder]}[frozen]
    model.train()
    assert all(not m.training for m in parts)
    assert any(m.training for m in model.modules() if not any(m is p or m in set(p.modules()) for p in parts))
    occ, poses = _batch()
    model.forward_train(occ, poses)["loss"].backward()
    frozen_ids = {id(p) for m in parts for p in m.parameters()}
    trainable_ids = {id(p) for p in model.trainable_parameters()}
    assert frozen_ids and not frozen_ids & trainable_ids
    assert trainable_ids == {id(p) for p in model.parameters()} - frozen_ids
    assert all(p.grad is None and not p.requires_grad for m in parts for p in m.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.trainable_parameters())


def test_transformer_is_causal():
    model = _world()
    model.eval()
    tr = model.transformer
    torch.manual_seed(1)
    tokens = torch.randn(B, 3, 16, 16, 16)
    pose_tokens = torch.randn(B, 3, 16)
    logits, pose = tr(tokens, pose_tokens)
    t = 1
    tokens2, pose2 = tokens.clone(), pose_tokens.clone()
    tokens2[:, t + 1] += torch.randn_like(tokens2[:, t + 1])
    pose2[:, t + 1] += 1.0
    logits2, pose_out2 = tr(tokens2, pose2)
    assert torch.allclose(logits[:, : t + 1], logits2[:, : t + 1], atol=1e-5)
    assert torch.allclose(pose[:, : t + 1], pose_out2[:, : t + 1], atol=1e-5)
    assert not torch.allclose(logits[:, t + 1:], logits2[:, t + 1:], atol=1e-3)
    assert not torch.allclose(pose[:, t + 1:], pose_out2[:, t + 1:], atol=1e-3)


def test_scene_tokens_never_attend_to_ego_tokens():
    model = _world()
    model.eval()
    tokens = torch.randn(B, 3, 16, 16, 16)
    logits, _ = model.transformer(tokens, torch.randn(B, 3, 16))
    logits2, _ = model.transformer(tokens, torch.randn(B, 3, 16))
    assert torch.allclose(logits, logits2, atol=1e-6)


@pytest.mark.parametrize("n_future", [3, 6])
def test_rollout_returns_configured_future(n_future):
    model = _world()
    model.eval()
    occ, poses = _batch(frames=2)
    out = model.rollout(occ, poses, n_future)
    assert out["occ"].shape == (B, n_future, X, Y, Z) and out["occ"].dtype == torch.int64
    assert out["poses"].shape == (B, n_future, 13)
    assert out["codes"].shape == (B, n_future, 16, 16)
    assert torch.allclose(out["poses"][..., 3:7].norm(dim=-1), torch.ones(B, n_future), atol=1e-5)
    assert torch.equal(out["occ"], model.vae.decode_indices(out["codes"]))
    default = model.rollout(occ, poses)
    assert default["occ"].shape[1] == model.future_frames == 2


def test_nuscenes_pose_mode():
    torch.manual_seed(0)
    model = build_model(tiny_model_config(pose_mode="nuscenes"))
    occ, _ = _batch()
    g = torch.Generator().manual_seed(3)
    poses = torch.cat([torch.randn(B, 4, 2, generator=g),
                       torch.nn.functional.one_hot(torch.randint(0, 3, (B, 4), generator=g), 3).float()], -1)
    out = model.forward_train(occ, poses)
    out["loss"].backward()
    assert torch.isfinite(out["pose_loss"])
    model.eval()
    roll = model.rollout(occ[:, :2], poses[:, :2], 3)
    assert roll["poses"].shape == (B, 3, 5)
    assert torch.equal(roll["poses"][..., 2:], poses[:, 1:2, 2:].expand(B, 3, 3))  # keeps the last command


def test_deterministic_under_fixed_seed():
    occ, poses = _batch()

    def run():
        torch.manual_seed(123)
        model = build_model(tiny_model_config())
        model.train()
        torch.manual_seed(7)
        loss = model.forward_train(occ, poses)["loss"].item()
        model.eval()
        return loss, model.rollout(occ[:, :2], poses[:, :2], 2)

    (loss_a, roll_a), (loss_b, roll_b) = run(), run()
    assert loss_a == loss_b
    assert torch.equal(roll_a["codes"], roll_b["codes"]) and torch.equal(roll_a["poses"], roll_b["poses"])


def test_bf16_autocast_on_cpu():
    model = _world(freeze_vae=False)
    model.train()
    occ, poses = _batch()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model.forward_train(occ, poses)
        vae_out = model.vae.forward_train(occ)
    assert torch.isfinite(out["loss"]) and torch.isfinite(vae_out["loss"])
    (out["loss"] + vae_out["loss"]).backward()
    assert torch.isfinite(model.vae.encoder.conv_in.weight.grad).all()


def test_tokenizer_check_refuses_untrained_frozen_tokenizer():
    model = _world()
    with pytest.raises(TokenizerNotTrainedError, match="config/vqvae_tokyo.py"):
        check_tokenizer_trained(model)
    mark_tokenizer_trained(model)
    check_tokenizer_trained(model)
    model.vae.tokenizer_grid = (32, 32, 8, 18)  # trained for other classes
    with pytest.raises(TokenizerNotTrainedError, match="trained for"):
        check_tokenizer_trained(model)
    check_tokenizer_trained(_world(freeze_vae=False))  # a trainable tokenizer needs no prior training


def test_build_model_rejects_unknown_keys_and_types():
    with pytest.raises(ValueError, match="unknown keys"):
        build_model(tiny_model_config(bogus=1))
    with pytest.raises(ValueError, match="unknown model type"):
        build_model({**tiny_model_config(), "type": "Nope"})
    cfg = tiny_model_config()
    cfg["transformer"]["embed_dim"] = 32
    with pytest.raises(ValueError, match="e_dim"):
        build_model(cfg)


def test_forward_train_from_cached_codes_matches():
    model = _world()
    model.eval()  # no dropout: both paths must give the same numbers
    occ, poses = _batch()
    _, codes = model.vae.encode(occ)
    a = model.forward_train(occ, poses)
    b = model.forward_train_codes(codes, poses)
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-5), key
    b["loss"].backward()
    assert model.transformer.conv_out.weight.grad is not None
    with pytest.raises(RuntimeError, match="freeze_vae"):
        _world(freeze_vae=False).forward_train_codes(codes, poses)


def test_chunked_no_grad_encoding_equals_full():
    torch.manual_seed(0)
    vae = build_model({**tiny_model_config(), "type": "VAERes2D"})
    vae.eval()
    occ, _ = _batch(frames=3)
    with torch.no_grad():
        z_a, loss_a, idx_a = vae._encode(occ, no_grad_chunk=2)    # 6 frames in chunks of 2
        z_b, loss_b, idx_b = vae._encode(occ, no_grad_chunk=100)  # all at once
    assert torch.equal(idx_a, idx_b)
    assert torch.allclose(z_a, z_b, atol=1e-5) and torch.allclose(loss_a, loss_b, atol=1e-6)
