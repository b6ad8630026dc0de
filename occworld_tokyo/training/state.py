"""The position of a training run (what a checkpoint restores) and the per-step seed."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path


@dataclass
class TrainState:
    epoch: int = 0          # epochs completed
    global_iter: int = 0    # optimizer steps taken
    iter_in_epoch: int = 0  # batches of epoch `epoch` already trained
    best_val_loss: float = math.inf
    best_epoch: int = 0     # the epoch whose weights best.pth holds (0: none yet)
    last_checkpoint: Path | None = None
    consecutive_skips: int = 0


def step_seed(seed: int, rank: int, global_iter: int) -> int:
    """The torch seed of one training step: depends only on (seed, rank, step), never on process history."""
    return (seed * 1_000_003 + global_iter * 7919 + rank * 104_729) % (2 ** 63 - 1)
