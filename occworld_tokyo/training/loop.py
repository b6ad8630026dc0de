"""The training loop: epochs of optimizer steps, the same for both stages (what differs is in `stages`).

For each batch: reseed torch from (seed, rank, global step), forward through `model.forward_train`, stop on a
non-finite loss (checked on all processes), backward (GradScaler on CUDA fp16), clip at `grad_clip.max_norm`,
step, lr schedule, the stage's per-step work; every `log_config.interval` steps a log line; the checkpoint
policy decides what is written when (`policy.CheckpointPolicy`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import torch

from occworld_tokyo.dataset import DataBundle, ResumableSampler
from occworld_tokyo.training.distributed import DistEnv, all_reduce_mean
from occworld_tokyo.training.logs import LOG, log_window
from occworld_tokyo.training.policy import CheckpointPolicy
from occworld_tokyo.training.precision import Precision
from occworld_tokyo.training.stages import Stage, TrainingError
from occworld_tokyo.training.state import TrainState, step_seed


class NonFiniteLossError(TrainingError):
    """A NaN/Inf loss (or too many fp16 overflow skips): the run stopped, earlier checkpoints are kept."""


class TrainStep(torch.nn.Module):
    """forward() = model.forward_train(...), so DistributedDataParallel sees the training call."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, *args):
        return self.model.forward_train(*args)


@dataclass
class Loop:
    model: torch.nn.Module
    step_module: torch.nn.Module
    stage: Stage
    params: list
    optimizer: torch.optim.Optimizer
    scheduler: object
    scaler: object
    loader: object
    sampler: ResumableSampler
    bundle: DataBundle
    env: DistEnv
    precision: Precision
    policy: CheckpointPolicy
    state: TrainState
    seed: int
    max_norm: float       # gradient clipping (inf: none)
    norm_type: float
    log_every: int
    max_skips: int
    max_epochs: int
    bar: object
    writer: object

    @property
    def iters_per_epoch(self) -> int:
        return self.sampler.batches_per_epoch

    @property
    def total_iters(self) -> int:
        return self.max_epochs * self.iters_per_epoch

    def run(self, run_eval: Callable[[str], tuple[dict, dict]]) -> dict:
        """Train until max_epochs; returns the last evaluation's metrics."""
        s = self.state
        last_metrics: dict = {}
        window: dict[str, float] = {}
        t_window, n_window, data_wait, step_time = time.perf_counter(), 0, 0.0, 0.0
        self.model.train()
        while s.epoch < self.max_epochs:
            self.sampler.set_epoch(s.epoch, s.iter_in_epoch)
            t_data = time.perf_counter()
            for batch in self.loader:
                t_start = time.perf_counter()
                data_wait += t_start - t_data
                lr, n = self.step(batch, window)
                step_time += time.perf_counter() - t_start
                n_window += n * self.env.world_size
                self.bar.update(1)
                if s.global_iter % self.log_every == 0 or s.iter_in_epoch == self.iters_per_epoch:
                    log_window(self.writer, window, lr, t_window, n_window, data_wait, step_time, self.env, s,
                               self.iters_per_epoch, self.total_iters, self.bar)
                    window, t_window, n_window, data_wait, step_time = {}, time.perf_counter(), 0, 0.0, 0.0
                if self.policy.latest_due(self.iters_per_epoch):
                    self.policy.save_latest()
                t_data = time.perf_counter()
            s.epoch += 1
            s.iter_in_epoch = 0
            last_metrics = self.policy.end_of_epoch(run_eval, self.writer) or last_metrics
        return last_metrics

    def step(self, batch: dict, window: dict) -> tuple[float, int]:
        """One optimizer step; adds its statistics to `window`. Returns (lr used, samples in the batch)."""
        s, env = self.state, self.env
        torch.manual_seed(step_seed(self.seed, env.rank, s.global_iter))
        inputs = self.stage.inputs(batch, env.device)
        with self.precision.autocast():
            out = self.step_module(*inputs)
        loss = out["loss"]
        finite = all_reduce_mean(torch.isfinite(loss.detach()).float().reshape(1), env)
        if finite.item() < 1.0 and self.scaler is None:
            where = [self.bundle.train.describe(int(i)) for i in _batch_indices(batch, self.bundle)]
            raise NonFiniteLossError(
                f"loss is {loss.item()} at epoch {s.epoch + 1}, iteration {s.iter_in_epoch + 1}/"
                f"{self.iters_per_epoch} (global step {s.global_iter + 1}); batch {where}. Stopped; the last "
                f"good checkpoint is kept: {s.last_checkpoint or 'none written yet'}. Try a lower --lr, "
                "check the data (guide: Troubleshooting), then --resume")
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.params, self.max_norm, norm_type=self.norm_type)
        if self.scaler is not None:
            self._scaled_step(loss)
        else:
            self.optimizer.step()
        lr = self.optimizer.param_groups[0]["lr"]
        self.scheduler.step()
        s.global_iter += 1
        s.iter_in_epoch += 1
        for k, v in out.items():
            if k != "pred" and torch.is_tensor(v) and v.numel() == 1:
                window[k] = window.get(k, 0.0) + float(v.detach().float())
        window["grad_norm"] = window.get("grad_norm", 0.0) + float(grad_norm)
        self.stage.after_step(self.model, out, window, s.global_iter, env, self.seed)
        window["_count"] = window.get("_count", 0.0) + 1
        return lr, int(inputs[0].shape[0])

    def _scaled_step(self, loss: torch.Tensor) -> None:
        s, scaler = self.state, self.scaler
        before = scaler.get_scale()
        scaler.step(self.optimizer)
        scaler.update()
        if scaler.get_scale() >= before:
            s.consecutive_skips = 0
            return
        s.consecutive_skips += 1
        LOG.warning(f"fp16: GradScaler skipped the optimizer step at global step {s.global_iter + 1} (inf/NaN "
                    f"gradients; loss {loss.item():.4g}); scale {before:g} -> {scaler.get_scale():g}")
        if s.consecutive_skips > self.max_skips:
            raise NonFiniteLossError(f"{s.consecutive_skips} consecutive fp16 overflow skips up to global step "
                                     f"{s.global_iter + 1}: the loss is not finite. Last good checkpoint: "
                                     f"{s.last_checkpoint or 'none written yet'}")


def _batch_indices(batch: dict, bundle: DataBundle) -> list[int]:
    """Dataset indices of a batch (via the window's (part, start) pair), for naming the samples of a bad step."""
    lookup = {tuple(s): i for i, s in enumerate(bundle.train.starts)}
    return [lookup.get((int(p), int(s)), -1) for p, s in batch["index"].tolist()]
