"""Checkpoint policy: what is written when, in which order, and how an interrupted run's outputs are repaired.

Writes (rank 0; the RNG states and stage extras are gathered from every process first):
    latest.pth                every `checkpoint_config.interval_iters` steps inside an epoch, and at epoch ends
                              without an evaluation when that interval is set
    epoch_N.pth               every `evaluation.interval` epochs and at the last one, carrying that evaluation's
                              metrics (`metrics_json`) and `best_epoch`
    best.pth                  a byte copy of epoch_N.pth when its validation loss is the lowest so far
    metrics/epoch_N.json      last, once both checkpoints are on disk
    best.pth run_complete     set when the run reaches max_epochs (stage 2 refuses a tokenizer without it)

Order matters for interruptions (kill, disk full): the epoch checkpoint is the source of truth and best.pth and
the metrics file are derived from it, so `reconcile` (run on --resume, --eval-only and before stage 2 reads a
tokenizer) rebuilds whatever an interruption left behind: best.pth from epoch_<best_epoch>.pth, a missing
metrics file from the checkpoint's `metrics_json`.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Callable

import torch

from occworld_tokyo.training import checkpoint as ckpt_io
from occworld_tokyo.training.distributed import DistEnv, all_gather_objects, barrier
from occworld_tokyo.training.logs import LOG, format_metrics, tensorboard_eval, write_metrics
from occworld_tokyo.training.stages import Stage
from occworld_tokyo.training.state import TrainState


class CheckpointPolicy:
    def __init__(self, work_dir: Path, model: torch.nn.Module, optimizer, scheduler, scaler, cfg: dict,
                 stage: Stage, env: DistEnv, state: TrainState) -> None:
        self.work_dir, self.model, self.optimizer, self.scheduler, self.scaler = work_dir, model, optimizer, \
            scheduler, scaler
        self.cfg, self.stage, self.env, self.state = cfg, stage, env, state
        self.latest_every = int(cfg["checkpoint_config"]["interval_iters"])
        self.eval_every = int(cfg["evaluation"]["interval"])
        self.max_epochs = int(cfg["max_epochs"])

    # -------------------------------------------------------------------------------------------- payload
    def payload(self, metrics: dict | None = None) -> dict | None:
        """The checkpoint contents (collective: every process calls it; rank 0 gets the dict, the others None)."""
        from occworld_tokyo.model import checkpoint_metadata

        rngs = all_gather_objects(ckpt_io.capture_rng(), self.env)
        extras = self.stage.checkpoint_extras(self.model, self.env)
        if not self.env.is_main:
            return None
        self.stage.before_save(self.model)
        s = self.state
        meta = dict(checkpoint_metadata(self.model))
        meta.update({"torch": str(torch.__version__), "world_size": self.env.world_size,
                     "time": datetime.now().isoformat()})
        out = {
            "state_dict": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "epoch": s.epoch, "global_iter": s.global_iter,
            "iter_in_epoch": s.iter_in_epoch, "scaler": self.scaler.state_dict() if self.scaler is not None else {},
            "rng": rngs, "best_val_loss": float(s.best_val_loss), "best_epoch": s.best_epoch,
            "stage": self.stage.name, "config_json": json.dumps(self.cfg, default=str), "meta": meta, **extras,
        }
        if metrics is not None:
            out["metrics_json"] = json.dumps(metrics, default=str)
        return out

    def save_latest(self) -> None:
        path = self.work_dir / "latest.pth"
        payload = self.payload()
        if payload is not None:
            ckpt_io.save_checkpoint(path, payload)
        self.state.last_checkpoint = path
        barrier(self.env)

    # -------------------------------------------------------------------------------------------- cadence
    def latest_due(self, iters_per_epoch: int) -> bool:
        s = self.state
        return bool(self.latest_every) and s.global_iter % self.latest_every == 0 and s.iter_in_epoch < iters_per_epoch

    def end_of_epoch(self, run_eval: Callable[[str], tuple[dict, dict]], writer) -> dict:
        """After epoch `state.epoch`: evaluate and write epoch_N.pth / best.pth / metrics when due."""
        s = self.state
        if not (s.epoch % self.eval_every == 0 or s.epoch == self.max_epochs):
            if self.latest_every:
                self.save_latest()
            return {}
        metrics, example = ({}, {})
        if self.env.is_main:
            metrics, example = run_eval(f"epoch_{s.epoch}")
            metrics.update(epoch=s.epoch, global_iter=s.global_iter)
            improved = metrics["val_loss"] < s.best_val_loss
            metrics.update(is_best=improved, best_val_loss=min(s.best_val_loss, metrics["val_loss"]),
                           best_epoch=s.epoch if improved else s.best_epoch)
        improved, s.best_val_loss, s.best_epoch = all_gather_objects(
            (metrics.get("is_best", False), metrics.get("best_val_loss", s.best_val_loss),
             metrics.get("best_epoch", s.best_epoch)), self.env)[0]
        path = self.work_dir / f"epoch_{s.epoch}.pth"
        payload = self.payload(metrics)
        if self.env.is_main:
            ckpt_io.save_checkpoint(path, payload)
            if improved:
                ckpt_io.copy_checkpoint(path, self.work_dir / "best.pth")
            out = write_metrics(self.work_dir, f"epoch_{s.epoch}", metrics)
            tensorboard_eval(writer, metrics, example, s.global_iter)
            LOG.info(f"validation after epoch {s.epoch} -> {out}\n{format_metrics(metrics)}")
        s.last_checkpoint = path
        barrier(self.env)
        return metrics

    def finish(self) -> None:
        """The run reached max_epochs: mark best.pth as the result of a complete run."""
        best = self.work_dir / "best.pth"
        if self.env.is_main and self.state.epoch >= self.max_epochs and best.is_file():
            ckpt = ckpt_io.load_checkpoint(best)
            if not ckpt.get("run_complete"):
                ckpt_io.save_checkpoint(best, {**ckpt, "run_complete": True})
        barrier(self.env)


def reconcile(work_dir: Path, ckpt: dict, log: Callable[[str], object] = LOG.warning) -> list[str]:
    """Repair best.pth and the metrics files after an interruption, from checkpoint `ckpt` (the newest one).
    Returns what was repaired (empty when everything agreed)."""
    work_dir = Path(work_dir)
    repaired: list[str] = []
    best_epoch = int(ckpt.get("best_epoch", 0) or 0)
    src = work_dir / f"epoch_{best_epoch}.pth"
    best = work_dir / "best.pth"
    if best_epoch > 0 and src.is_file():
        want = ckpt_io.checkpoint_position(src)
        have = ckpt_io.checkpoint_position(best) if best.is_file() else None
        if have != want:
            ckpt_io.copy_checkpoint(src, best)
            repaired.append(f"best.pth rebuilt from {src.name} (it held {have or 'nothing'}; the run's best is "
                            f"epoch {best_epoch})")
    for path in sorted(work_dir.glob("epoch_*.pth")):
        out = work_dir / "metrics" / f"{path.stem}.json"
        if out.is_file():
            continue
        try:
            text = ckpt_io.load_checkpoint(path, mmap=True, verify=False).get("metrics_json")
        except ckpt_io.CheckpointError:
            continue
        if text:
            write_metrics(work_dir, path.stem, json.loads(text))
            repaired.append(f"metrics/{out.name} rewritten from {path.name}")
    for line in repaired:
        log(f"repaired after an interruption: {line}")
    return repaired


def reconcile_work_dir(work_dir: Path, log: Callable[[str], object] = LOG.warning) -> list[str]:
    """reconcile() from the newest checkpoint of a work dir (nothing to do when it has none)."""
    latest = ckpt_io.find_latest(work_dir, log)
    if latest is None:
        return []
    return reconcile(work_dir, ckpt_io.load_checkpoint(latest, mmap=True, verify=False), log)


