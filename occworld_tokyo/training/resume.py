"""Resume: which checkpoint, and putting a run back exactly where it stopped.

`--resume` takes the checkpoint with the largest (epoch, global_iter) READ FROM THE FILES in `<work-dir>/` and
`<work-dir>/checkpoints/` (best.pth is not a resume point); `--resume-from FILE` takes that file. Restored:
model (strict, shapes checked first), optimizer, scheduler, GradScaler, RNG states of every process, the stage's
extras (dead-code counts) and the data position (batches of the current epoch already trained are skipped).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from occworld_tokyo.training import checkpoint as ckpt_io
from occworld_tokyo.training.distributed import DistEnv
from occworld_tokyo.training.logs import LOG
from occworld_tokyo.training.stages import Stage, TrainingError
from occworld_tokyo.training.state import TrainState


def resume_path(work_dir: Path, resume: bool, resume_from: str | None) -> Path | None:
    if resume_from:
        return Path(resume_from)
    if not resume:
        return None
    path = ckpt_io.find_latest(work_dir, LOG.warning)
    if path is None:
        LOG.warning(f"--resume: no checkpoint in {work_dir} or {work_dir / 'checkpoints'}: starting a new run")
    return path


def restore_model(model: torch.nn.Module, ckpt: dict, path: Path, stage: Stage) -> None:
    """Strict load of a training checkpoint; refuses a checkpoint of the other stage or another architecture
    by name, in one message (never torch's size-mismatch traceback)."""
    their_stage = ckpt.get("stage")
    if their_stage and their_stage != stage.name:
        raise TrainingError(f"{path} is a {their_stage} checkpoint but the config trains the {stage.name} "
                            f"(model.type {stage.model_type}): wrong file/config")
    state = ckpt["state_dict"]
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [f"{k} {list(state[k].shape)} in the file vs {list(v.shape)} in the model"
                  for k, v in own.items() if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if missing or unexpected or mismatched:
        raise TrainingError(f"{path} does not fit the configured model: {len(missing)} missing keys "
                            f"(e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]}), "
                            f"{len(mismatched)} of another shape (e.g. {mismatched[:2]}); use the config it was "
                            "trained with")
    model.load_state_dict(state)
    grid = (ckpt.get("meta") or {}).get("tokenizer_grid")
    vae = stage.tokenizer(model)
    if grid is not None and vae is not None:
        vae.tokenizer_grid = tuple(int(v) for v in grid)
    stage.after_restore(model)


def restore_run(ckpt: dict, path: Path, model: torch.nn.Module, stage: Stage, optimizer, scheduler, scaler,
                state: TrainState, env: DistEnv, iters_per_epoch: int) -> None:
    """Everything of checkpoint `ckpt` (read from `path`) back into the run's objects and `state`."""
    restore_model(model, ckpt, path, stage)
    try:
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        if scaler is not None and ckpt.get("scaler"):
            scaler.load_state_dict(ckpt["scaler"])
    except (ValueError, KeyError, RuntimeError, TypeError, IndexError) as exc:
        raise TrainingError(f"{path}: the optimizer/scheduler state does not fit this run ({exc}); resume with the "
                            "config the checkpoint was written with") from exc
    for group in optimizer.param_groups:  # torch loads moments of any shape; a wrong one would train silently
        for param in group["params"]:
            for key, value in optimizer.state.get(param, {}).items():
                if isinstance(value, torch.Tensor) and value.dim() and tuple(value.shape) != tuple(param.shape):
                    raise TrainingError(f"{path}: optimizer state '{key}' has shape {list(value.shape)} for a "
                                        f"parameter of shape {list(param.shape)}; the file does not belong to this "
                                        "model: use the checkpoint and config of this run")
    state.epoch, state.global_iter = int(ckpt["epoch"]), int(ckpt["global_iter"])
    state.iter_in_epoch = int(ckpt.get("iter_in_epoch", 0))
    state.best_val_loss = float(ckpt.get("best_val_loss", math.inf))
    state.best_epoch = int(ckpt.get("best_epoch", 0) or 0)
    state.last_checkpoint = path
    stage.restore_extras(model, ckpt, env)
    rngs = ckpt.get("rng") or []
    if len(rngs) == env.world_size:
        try:
            ckpt_io.restore_rng(rngs[env.rank])
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as exc:  # checked on load; any other
            raise TrainingError(f"{path}: 'rng[{env.rank}]' cannot be restored ({exc}); the file is damaged: use "
                                "an earlier checkpoint (--resume-from <work-dir>/epoch_N.pth)") from exc
    else:
        LOG.warning(f"checkpoint written by {len(rngs)} process(es), now {env.world_size}: RNG states not "
                    "restored and the data position is approximate")
    if state.iter_in_epoch >= iters_per_epoch:
        state.epoch, state.iter_in_epoch = state.epoch + 1, 0
    LOG.info(f"resumed from {path}: epoch {state.epoch} done, global step {state.global_iter}, "
             f"{state.iter_in_epoch} batches into epoch {state.epoch + 1}, lr {scheduler.current_lr():.3g}")
