"""A training run from start to end: the wiring of the rooms of `occworld_tokyo.training`.

    run(cfg, opts)
      -> distributed set-up; rank 0 claims the work dir (a second run into it stops with a message)
      -> seeding, logging (`logs`)
      -> model, its stage object (`stages.stage_for`: tokenizer or world model)
      -> data: every session and frame checked first (`dataset.preflight`), split by session, loaders
      -> eval only: reconcile the work dir, evaluate best.pth (never an untrained model)
      -> AdamW + warmup-cosine per iteration, precision, initial weights or resume (`resume`)
      -> the loop (`loop.Loop`) with the checkpoint policy (`policy.CheckpointPolicy`)

Exactness of resume: each step re-seeds torch from (seed, rank, global_iter), the sampler's order depends only
on (seed, epoch) and skips the batches already done, and optimizer / scheduler / scaler / RNG states are
restored, so an interrupted and resumed run ends with the same weights as an uninterrupted one (tested).
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from occworld_tokyo.config import ConfigError
from occworld_tokyo.dataset import ResumableSampler, build_datasets, make_loader
from occworld_tokyo.training import checkpoint as ckpt_io
from occworld_tokyo.training.distributed import DistEnv, barrier, cleanup, init_distributed
from occworld_tokyo.training.evaluate import evaluate
from occworld_tokyo.training.logs import LOG, format_metrics, open_writer, setup_logging, write_metrics
from occworld_tokyo.training.loop import Loop, NonFiniteLossError, TrainStep
from occworld_tokyo.training.policy import CheckpointPolicy, reconcile, reconcile_work_dir
from occworld_tokyo.training.precision import choose_precision
from occworld_tokyo.training.resume import restore_model, restore_run, resume_path
from occworld_tokyo.training.schedule import build_scheduler
from occworld_tokyo.training.stages import Stage, TrainingError, stage_for
from occworld_tokyo.training.state import TrainState
from occworld_tokyo.threads import configure_threads

__all__ = ["run", "RunOptions", "TrainingError", "NonFiniteLossError"]


@dataclass
class RunOptions:
    work_dir: Path
    resume: bool = False
    resume_from: str | None = None
    from_scratch: bool = False
    gpu_ids: list[int] | None = None
    eval_only: bool = False
    progress: bool | None = None  # None: a bar when stderr is a terminal
    config_path: str = ""


def seed_everything(seed: int, rank: int = 0, deterministic: bool = True) -> None:
    import random

    random.seed(seed + rank)
    np.random.seed((seed + rank) % 2 ** 32)
    torch.manual_seed(seed + rank)
    if deterministic:
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)


def build_optimizer(params: list[torch.nn.Parameter], cfg: dict) -> torch.optim.Optimizer:
    o = cfg["optimizer"]
    return torch.optim.AdamW(params, lr=float(o["lr"]), weight_decay=float(o["weight_decay"]),
                             betas=tuple(o["betas"]), eps=float(o["eps"]))


def run(cfg: dict, opts: RunOptions) -> dict[str, Any]:
    """Train (or, with eval_only, evaluate) as the config says. Returns the last evaluation's metrics."""
    # Denormal floats make CPU convolutions ~50x slower in the first steps of a fresh tokenizer (measured on the
    # tiny config: 6 s -> 0.1 s per step). Flush them to zero first thing: OpenMP worker threads inherit the
    # floating-point mode only from the thread that creates them.
    torch.set_flush_denormal(True)
    env = init_distributed(opts.gpu_ids)
    try:
        with _claim(Path(opts.work_dir), env):
            return _run(cfg, opts, env)
    finally:
        cleanup(env)


def _claim(work_dir: Path, env: DistEnv):
    """Rank 0 holds the work dir for the whole run (the other processes of the same run share it)."""
    from occworld_tokyo.locks import claim_folder

    return claim_folder(work_dir, "training run") if env.is_main else contextlib.nullcontext(work_dir)


def _run(cfg: dict, opts: RunOptions, env: DistEnv) -> dict[str, Any]:
    from occworld_tokyo.dataset import find_sessions
    from occworld_tokyo.dataset.grid_select import select_grid
    from occworld_tokyo.dataset.preflight import check_sessions
    from occworld_tokyo.model import build_model

    work_dir = Path(opts.work_dir)
    log_path = setup_logging(work_dir, env)
    seed = int(cfg["seed"])
    seed_everything(seed, env.rank, bool(cfg["deterministic"]))
    flushed = torch.set_flush_denormal(True)  # normally done already in run(), before any thread pool exists
    try:
        model = build_model(cfg["model"]).to(env.device)
    except (ValueError, TypeError, KeyError) as exc:
        raise ConfigError(f"{opts.config_path}: the model section cannot be built: {exc}") from exc
    stage = stage_for(model)
    precision = choose_precision(cfg, env.device)
    LOG.info(f"occworld-tokyo {stage.name} run | config {opts.config_path} | work dir {work_dir} | log {log_path}")
    LOG.info(f"device {env.device} x {env.world_size} process(es) | {precision.note} | torch {torch.__version__} | "
             f"python {platform.python_version()} | seed {seed} | denormals flushed: {flushed}")
    LOG.info(configure_threads(int(cfg["data"]["workers_per_gpu"])))

    sessions = find_sessions(cfg["data_root"], cfg["data"]["agent_types"])
    if cfg["data"]["val_root"]:
        sessions += find_sessions(cfg["data"]["val_root"], cfg["data"]["agent_types"])
    # the model against the data's grid, from meta.json alone: before the data check reads every array
    stage.check_consistency(cfg, select_grid(cfg["point_cloud_range"], cfg["voxel_size"],
                                             stored=sessions[0].grid).shape, model)
    LOG.info(check_sessions(sessions, stage.with_instances_val, cfg["evaluation"]["visibility"]))
    bundle = build_datasets(cfg, with_instances_val=stage.with_instances_val,
                            train_visibility=stage.train_visibility(model, cfg))
    for note in bundle.notes:
        LOG.info(note)
    LOG.info(f"{len(bundle.train)} train windows, {len(bundle.val)} val windows "
             f"({cfg['history_frames']} history + {cfg['future_frames']} future frames) from "
             f"{len(bundle.sessions)} session(s) at {bundle.rate_hz} Hz")
    ev_cfg = dict(cfg["evaluation"])
    data_cfg = cfg["data"]
    batch_size, workers = int(data_cfg["samples_per_gpu"]), int(data_cfg["workers_per_gpu"])
    val_loader = make_loader(bundle.val, batch_size, min(workers, 2), None)

    def run_eval(tag: str) -> tuple[dict, dict]:
        metrics, example = evaluate(model, val_loader, stage, bundle.selection.grid, bundle.rate_hz,
                                    env.device, precision, ev_cfg, int(cfg["num_classes"]), int(cfg["free_index"]),
                                    ev_cfg.get("max_samples"))
        return {"tag": tag, **metrics}, example

    if opts.eval_only:
        return _eval_only(model, stage, run_eval, work_dir, opts, env)

    return _train(cfg, opts, env, model, stage, precision, bundle, run_eval)


def _train(cfg: dict, opts: RunOptions, env: DistEnv, model: torch.nn.Module, stage: Stage, precision,
           bundle, run_eval) -> dict[str, Any]:
    """The optimisation: loaders, AdamW + schedule, initial weights or resume, then the loop and its policy."""
    work_dir, seed = Path(opts.work_dir), int(cfg["seed"])
    data_cfg = cfg["data"]
    batch_size, workers = int(data_cfg["samples_per_gpu"]), int(data_cfg["workers_per_gpu"])
    pin = env.device.type == "cuda" if data_cfg["pin_memory"] is None else data_cfg["pin_memory"]
    sampler = ResumableSampler(len(bundle.train), shuffle=True, seed=seed, rank=env.rank,
                               world_size=env.world_size, batch_size=batch_size)
    train_loader = make_loader(bundle.train, batch_size, workers, sampler,
                               pin_memory=pin,
                               prefetch_factor=int(data_cfg["prefetch_factor"]))
    iters_per_epoch = sampler.batches_per_epoch
    max_epochs = int(cfg["max_epochs"])
    total_iters = max_epochs * iters_per_epoch
    params = stage.trainable_params(model)
    optimizer = build_optimizer(params, cfg)
    scheduler = build_scheduler(optimizer, cfg, total_iters)
    scaler = precision.make_scaler(float(cfg["fp16"]["init_scale"]))
    state = TrainState()

    path = resume_path(work_dir, opts.resume, opts.resume_from)
    if path is not None:
        ckpt = ckpt_io.load_checkpoint(path, map_location=env.device)
        restore_run(ckpt, path, model, stage, optimizer, scheduler, scaler, state, env, iters_per_epoch)
        if env.is_main:
            reconcile(work_dir, ckpt)
        barrier(env)
    else:
        for note in stage.initial_weights(model, cfg, work_dir, opts.from_scratch, LOG.info):
            LOG.info(note)

    n_train = sum(p.numel() for p in params)
    n_all = sum(p.numel() for p in model.parameters())
    LOG.info(f"{n_train:,} trainable of {n_all:,} parameters | AdamW lr {cfg['optimizer']['lr']} wd "
             f"{cfg['optimizer']['weight_decay']} | warmup {scheduler.warmup_iters} it, cosine to "
             f"{scheduler.min_lr} over {total_iters} it ({iters_per_epoch}/epoch x {max_epochs} epochs) | "
             f"batch {batch_size}/process, {workers} loader workers")
    stage.prepare_training(model, bundle.selection.grid)
    step_module: torch.nn.Module = TrainStep(model)
    if cfg["compile"]["enabled"]:
        backend, mode = cfg["compile"]["backend"], cfg["compile"]["mode"]
        step_module = torch.compile(step_module, backend=backend, mode=mode)
        LOG.info(f"torch.compile: backend {backend}, mode {mode} (the first steps compile)")
    if env.distributed:
        step_module = torch.nn.parallel.DistributedDataParallel(
            step_module, device_ids=[env.device.index] if env.device.type == "cuda" else None)
    writer = open_writer(work_dir, env)
    show_bar = opts.progress if opts.progress is not None else sys.stderr.isatty()
    bar = tqdm(total=total_iters, initial=state.global_iter, desc=stage.name, unit="it", dynamic_ncols=True,
               disable=not (env.is_main and show_bar))
    policy = CheckpointPolicy(work_dir, model, optimizer, scheduler, scaler, cfg, stage, env, state)
    loop = Loop(model=model, step_module=step_module, stage=stage, params=params, optimizer=optimizer,
                scheduler=scheduler, scaler=scaler, loader=train_loader, sampler=sampler, bundle=bundle, env=env,
                precision=precision, policy=policy, state=state, seed=seed,
                max_norm=float(cfg["grad_clip"]["max_norm"] or math.inf),
                norm_type=float(cfg["grad_clip"]["norm_type"]), log_every=int(cfg["log_config"]["interval"]),
                max_skips=int(cfg["fp16"]["max_consecutive_skips"]), max_epochs=max_epochs, bar=bar, writer=writer)
    try:
        last_metrics = loop.run(run_eval)
        policy.finish()
    finally:
        bar.close()
        if writer is not None:
            try:
                writer.flush()
                writer.close()
            except OSError as exc:  # e.g. the disk filled: keep the error that stopped the run as the one reported
                LOG.warning(f"TensorBoard log not flushed: {exc}")
    codes = getattr(stage, "frame_codes", None)
    if codes is not None:
        LOG.info(f"frozen tokenizer: {len(codes)} training frame codes cached, each frame encoded once "
                 "(training/code_cache.py)")
    LOG.info(f"done: {state.epoch} epochs, {state.global_iter} steps; best val loss {state.best_val_loss:.5g}"
             f"{f' (epoch {state.best_epoch})' if state.best_epoch else ''}; checkpoints in {work_dir}")
    return last_metrics


def _eval_only(model: torch.nn.Module, stage: Stage, run_eval, work_dir: Path, opts: RunOptions,
               env: DistEnv) -> dict:
    """Evaluate --resume-from FILE or the work dir's best.pth (repaired first when an interruption left it
    behind the metrics); never an untrained model."""
    if env.is_main and not opts.resume_from:
        reconcile_work_dir(work_dir)
    barrier(env)
    path = Path(opts.resume_from) if opts.resume_from else ckpt_io.find_best(work_dir)
    if path is None:
        raise TrainingError(f"--eval-only needs a trained model: no --resume-from FILE given and no best.pth in "
                            f"{work_dir} or {work_dir / 'checkpoints'}. Train first (or pass --resume-from); "
                            "an untrained model is never evaluated")
    ckpt = ckpt_io.load_checkpoint(path, map_location=env.device)
    if int(ckpt.get("global_iter", 0)) <= 0:
        raise TrainingError(f"{path} holds an untrained model (global_iter 0): refusing to evaluate it")
    restore_model(model, ckpt, path, stage)
    result: dict = {}
    if env.is_main:
        result, _ = run_eval(f"eval_only:{path.name}")
        result.update(checkpoint=str(path), epoch=int(ckpt.get("epoch", 0)))
        out = write_metrics(work_dir, f"eval_{path.stem}", result)
        LOG.info(f"evaluated {path} -> {out}\n{format_metrics(result)}")
    barrier(env)
    return result
