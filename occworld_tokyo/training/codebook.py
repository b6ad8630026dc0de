"""Codebook care during tokenizer training: dead-code restarts kept identical across processes and resumes.

The tokenizer's `VectorQuantizer` counts code choices and keeps the latest batch's encoder vectors (see
occworld_tokyo/model/vae.py). Here the trainer's side: every `dead_code_restart.every` iterations the counts of all
processes are summed, process 0 moves the dead codes (with a generator seeded by the global step, so a resumed run
repeats the same moves) and sends the codebook to the others. The counts since the last restart travel in the
training checkpoint (`vq_code_counts`, beside the state_dict, whose names stay OccWorld's).
"""

from __future__ import annotations

import torch

from occworld_tokyo.training.distributed import DistEnv, all_reduce_sum, broadcast_


def restart_due(vae, global_iter: int) -> bool:
    spec = getattr(vae, "dead_code_restart", None)
    return bool(spec) and global_iter > 0 and global_iter % spec["every"] == 0


def restart_dead_codes(vae, env: DistEnv, seed: int) -> int:
    """Sum the counts over processes, restart the dead codes on process 0, share the codebook. Returns the number
    of codes moved (the same on every process)."""
    vq = vae.vqvae
    counts = vq.counts()
    counts.copy_(all_reduce_sum(counts, env))
    moved = torch.zeros(1, dtype=torch.float64, device=counts.device)
    if env.is_main:
        moved[0] = vq.restart_dead_codes(vae.dead_code_restart["min_share"], torch.Generator().manual_seed(seed))
    else:
        counts.zero_()
    broadcast_(vq.embedding.weight.data, env)
    broadcast_(moved, env)
    return int(moved.item())


def counts_for_checkpoint(vae, env: DistEnv) -> torch.Tensor | None:
    """The counts since the last restart, summed over processes (call on every process), or None when off."""
    if vae is None or not getattr(vae, "dead_code_restart", None):
        return None
    return all_reduce_sum(vae.vqvae.counts(), env).cpu()


def restore_counts(vae, counts: torch.Tensor | None, env: DistEnv) -> None:
    """Resume: process 0 takes the saved sum, the others start from zero (so the next sum is the same)."""
    if vae is None or not getattr(vae, "dead_code_restart", None):
        return
    vq = vae.vqvae
    mine = vq.counts()
    mine.zero_()
    if counts is not None and env.is_main and counts.numel() == vq.n_e:
        mine.copy_(counts.to(mine))
