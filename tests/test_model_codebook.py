"""Codebook usage statistics and dead-code restarts of the tokenizer's VectorQuantizer (not in OccWorld: an
option against codebook collapse; the state_dict must keep the released names)."""

from __future__ import annotations

import math

import pytest
import torch

from occworld_tokyo.model import build_model
from occworld_tokyo.model.build import tiny_model_config
from occworld_tokyo.model.vae import VectorQuantizer, codebook_usage


def test_codebook_usage_counts_and_perplexity():
    u = codebook_usage(torch.tensor([0, 0, 1, 1]), n_e=8)
    assert u["codes_used"] == 2 and u["code_perplexity"] == pytest.approx(2.0)
    u = codebook_usage(torch.tensor([3, 3, 3, 3]), n_e=8)
    assert u["codes_used"] == 1 and u["code_perplexity"] == pytest.approx(1.0)
    u = codebook_usage(None, 4, counts=torch.tensor([3, 1, 0, 0]))
    assert u["code_perplexity"] == pytest.approx(math.exp(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25))))


def _quantizer(track: bool) -> VectorQuantizer:
    torch.manual_seed(0)
    vq = VectorQuantizer(n_e=6, e_dim=4, z_channels=4, beta=0.25, track_usage=track)
    vq.embedding.weight.data[:] = torch.arange(6, dtype=torch.float32)[:, None] * 10.0  # codes far apart
    return vq


def test_usage_counted_only_when_training_with_grad():
    vq = _quantizer(track=True)
    z = torch.zeros(2, 4, 3, 3) + 0.1  # every vector nearest to code 0
    with torch.no_grad():
        vq.quantize(z)
    vq.eval()
    vq.quantize(z)
    assert vq.code_counts.sum() == 0
    vq.train()
    vq.quantize(z)
    assert vq.code_counts.tolist() == [18, 0, 0, 0, 0, 0]
    off = _quantizer(track=False)
    off.quantize(z)
    assert off.code_counts.sum() == 0 and off.last_inputs is None
    # not a buffer: DistributedDataParallel re-broadcasts buffers from rank 0 at every forward, which would
    # overwrite each process's own counts (they are summed over processes at restart time instead)
    assert "code_counts" not in dict(vq.named_buffers()) and "code_counts" not in vq.state_dict()


def test_dead_codes_move_onto_batch_vectors_and_counts_reset():
    vq = _quantizer(track=True)
    z = torch.randn(1, 4, 3, 3) * 0.1  # all near code 0: codes 1..5 dead
    vq.quantize(z)
    assert vq.dead_codes(0.03).tolist() == [1, 2, 3, 4, 5]
    before = vq.embedding.weight.data.clone()
    moved = vq.restart_dead_codes(0.03, torch.Generator().manual_seed(1))
    assert moved == 5 and vq.code_counts.sum() == 0
    after = vq.embedding.weight.data
    assert torch.equal(after[0], before[0])  # the live code stays
    flat = z.permute(0, 2, 3, 1).reshape(-1, 4)
    new = after[1:]
    dist = torch.cdist(new, flat)
    assert torch.all(dist.min(dim=1).values < 1e-6)  # each restarted code is one of the batch's vectors
    assert len({tuple(v.tolist()) for v in new}) == 5  # and distinct ones (9 vectors for 5 codes)
    # the same generator seed gives the same moves
    vq2 = _quantizer(track=True)
    vq2.quantize(z)
    vq2.restart_dead_codes(0.03, torch.Generator().manual_seed(1))
    assert torch.equal(vq2.embedding.weight.data, after)


def test_more_dead_codes_than_vectors_get_noisy_copies():
    vq = _quantizer(track=True)
    z = torch.randn(1, 4, 1, 2) * 0.1  # 2 vectors for 5 dead codes
    vq.quantize(z)
    assert vq.restart_dead_codes(0.03, torch.Generator().manual_seed(0)) == 5
    new = vq.embedding.weight.data[1:]
    assert len({tuple(v.tolist()) for v in new}) == 5


def test_no_restart_before_any_counted_step():
    vq = _quantizer(track=True)
    before = vq.embedding.weight.data.clone()
    assert vq.dead_codes(0.03).numel() == 0
    assert vq.restart_dead_codes(0.03, torch.Generator()) == 0
    assert torch.equal(vq.embedding.weight.data, before)


def test_restart_option_keeps_the_state_dict_names():
    cfg = tiny_model_config()
    off = build_model(cfg)
    cfg["vae"] = dict(cfg["vae"], dead_code_restart=dict(every=10, min_share=0.05))
    on = build_model(cfg)
    assert on.vae.dead_code_restart == {"every": 10, "min_share": 0.05} and off.vae.dead_code_restart is None
    assert list(on.state_dict()) == list(off.state_dict())
    on.load_state_dict(off.state_dict(), strict=True)


@pytest.mark.parametrize("bad, message", [(dict(every=5, share=0.1), "unknown keys"),
                                          (dict(every=5, min_share=1.5), "min_share")])
def test_restart_option_checked(bad, message):
    cfg = tiny_model_config()
    cfg["vae"] = dict(cfg["vae"], dead_code_restart=bad)
    with pytest.raises((TypeError, ValueError), match=message):
        build_model(cfg)


def test_forward_train_returns_the_code_indices():
    cfg = tiny_model_config()
    vae = build_model(cfg).vae
    occ = torch.randint(0, 14, (1, 2, 32, 32, 8))
    out = vae.forward_train(occ)
    assert out["indices"].shape == (1, 2, *vae.token_size)
    assert int(out["indices"].max()) < vae.n_e


def test_restart_counts_survive_a_checkpoint_round_trip():
    from occworld_tokyo.training.codebook import counts_for_checkpoint, restart_due, restore_counts
    from occworld_tokyo.training.distributed import DistEnv

    env = DistEnv(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
    cfg = tiny_model_config()
    cfg["vae"] = dict(cfg["vae"], dead_code_restart=dict(every=4))
    vae = build_model(cfg).vae
    vae.train()
    vae.forward_train(torch.randint(0, 14, (1, 1, 32, 32, 8)))
    saved = counts_for_checkpoint(vae, env)
    assert saved.sum() == 16 * 16
    fresh = build_model(cfg).vae
    restore_counts(fresh, saved, env)
    assert torch.equal(fresh.vqvae.code_counts, vae.vqvae.code_counts)
    assert [restart_due(vae, i) for i in range(9)] == [False, False, False, False, True, False, False, False, True]
    plain = build_model(tiny_model_config()).vae
    assert counts_for_checkpoint(plain, env) is None and not restart_due(plain, 4)
