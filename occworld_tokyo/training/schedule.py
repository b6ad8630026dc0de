"""Learning-rate schedule: linear warmup, then cosine annealing to `min_lr`, stepped every iteration.

    step s < W:       lr = base * (r + (1 - r) * (s + 1) / W)          (reaches `base` at s = W - 1)
    W <= s < T:       lr = min + (base - min) * (1 + cos(pi * (s - W) / (T - W))) / 2
    s >= T:           lr = min

s = optimizer steps already taken (global_iter), W = warmup_iters, T = total iterations of the run,
r = warmup_ratio (0 by default: the first step uses base / W, never 0). Same shape as OccWorld's timm
CosineLRScheduler with t_in_epochs=False.
"""

from __future__ import annotations

import math

import torch


def lr_at(step: int, base_lr: float, min_lr: float, warmup_iters: int, total_iters: int,
          warmup_ratio: float = 0.0) -> float:
    """The learning rate for optimizer step `step` (0-based)."""
    if warmup_iters > 0 and step < warmup_iters:
        return base_lr * (warmup_ratio + (1.0 - warmup_ratio) * (step + 1) / warmup_iters)
    span = max(1, total_iters - warmup_iters)
    progress = min(1.0, max(0.0, (step - warmup_iters) / span))
    return min_lr + (base_lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


class WarmupCosine:
    """Sets each param group's lr from `lr_at` for the current step; `state_dict` is plain ints/floats."""

    def __init__(self, optimizer: torch.optim.Optimizer, base_lr: float, min_lr: float, warmup_iters: int,
                 total_iters: int, warmup_ratio: float = 0.0) -> None:
        self.optimizer = optimizer
        self.base_lr, self.min_lr = float(base_lr), float(min_lr)
        self.warmup_iters, self.total_iters, self.warmup_ratio = int(warmup_iters), int(total_iters), float(warmup_ratio)
        self.step_count = 0
        self._apply()

    def current_lr(self) -> float:
        return lr_at(self.step_count, self.base_lr, self.min_lr, self.warmup_iters, self.total_iters,
                     self.warmup_ratio)

    def _apply(self) -> None:
        lr = self.current_lr()
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def step(self) -> None:
        """Call once after each optimizer step: moves to the next step's lr."""
        self.step_count += 1
        self._apply()

    def state_dict(self) -> dict:
        return {"base_lr": self.base_lr, "min_lr": self.min_lr, "warmup_iters": self.warmup_iters,
                "total_iters": self.total_iters, "warmup_ratio": self.warmup_ratio, "step_count": self.step_count}

    def load_state_dict(self, state: dict) -> None:
        """Restore the position; the run's own base/min/warmup/total win (a resume may change --epochs)."""
        self.step_count = int(state["step_count"])
        self._apply()


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: dict, total_iters: int) -> WarmupCosine:
    """From a resolved config (config.with_defaults: every lr_config key present)."""
    lr_cfg = cfg["lr_config"]
    warmup = int(lr_cfg["warmup_iters"]) if lr_cfg["warmup"] else 0
    return WarmupCosine(optimizer, float(cfg["optimizer"]["lr"]), float(lr_cfg["min_lr"]), warmup,
                        total_iters, float(lr_cfg["warmup_ratio"]))
