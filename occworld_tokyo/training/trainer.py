"""The training loop: one plain PyTorch loop for both stages (nanoGPT style: read it top to bottom).

    run(cfg, opts)
      -> distributed set-up, seeding, logging
      -> data (split by session), model, initial weights (pretrained / tokenizer / resume)
      -> AdamW + warmup-cosine per iteration, grad clipping, fp16+GradScaler on CUDA / fp32|bf16 on CPU
      -> for each epoch, for each batch: step; tokenizer: dead-code restart every `dead_code_restart.every` its
         (when configured); every `checkpoint_config.interval_iters`: latest.pth
      -> every `evaluation.interval` epochs and at the end: validate, epoch_N.pth, best.pth, metrics JSON

Stage = 'tokenizer' when cfg.model.type == 'VAERes2D' (VAERes2D.forward_train(occ)), else 'world_model'
(TransVQVAE.forward_train(occ, poses) with the tokenizer frozen).

Exactness of resume: each step re-seeds torch from (seed, rank, global_iter), the sampler's order depends only
on (seed, epoch) and skips the batches already done, and optimizer / scheduler / scaler / RNG states are
restored, so an interrupted and resumed run ends with the same weights as an uninterrupted one (tested).
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import resource
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from occworld_tokyo.config import ConfigError
from occworld_tokyo.dataset import DataBundle, ResumableSampler, build_datasets, make_loader
from occworld_tokyo.training import checkpoint as ckpt_io
from occworld_tokyo.training.codebook import counts_for_checkpoint, restart_dead_codes, restart_due, restore_counts
from occworld_tokyo.training.distributed import (DistEnv, all_gather_objects, all_reduce_mean, barrier, cleanup,
                                                 init_distributed)
from occworld_tokyo.training.evaluate import evaluate
from occworld_tokyo.training.precision import Precision, choose_precision
from occworld_tokyo.training.schedule import build_scheduler

LOG = logging.getLogger("occworld_tokyo.train")


class TrainingError(RuntimeError):
    """The run cannot start or go on; the message says why and what to do."""


class NonFiniteLossError(TrainingError):
    """A NaN/Inf loss (or too many fp16 overflow skips): the run stopped, earlier checkpoints are kept."""


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


@dataclass
class TrainState:
    epoch: int = 0          # epochs completed
    global_iter: int = 0    # optimizer steps taken
    iter_in_epoch: int = 0  # batches of epoch `epoch` already trained
    best_val_loss: float = math.inf
    last_checkpoint: Path | None = None
    consecutive_skips: int = 0
    history: list = field(default_factory=list)


# ------------------------------------------------------------------------------------------------ small pieces
def stage_of(cfg: dict) -> str:
    return "tokenizer" if cfg["model"].get("type") == "VAERes2D" else "world_model"


def step_seed(seed: int, rank: int, global_iter: int) -> int:
    """The torch seed of one training step: depends only on (seed, rank, step), never on process history."""
    return (seed * 1_000_003 + global_iter * 7919 + rank * 104_729) % (2 ** 63 - 1)


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


def memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2 ** 20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def setup_logging(work_dir: Path, env: DistEnv) -> Path | None:
    """Console + `train_<timestamp>.log` (rank 0). Messages go through tqdm.write so the bar stays intact."""
    LOG.handlers.clear()
    LOG.setLevel(logging.INFO if env.is_main else logging.WARNING)
    LOG.propagate = False
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S")

    class _TqdmHandler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            tqdm.write(self.format(record), file=sys.stderr)

    console = _TqdmHandler()
    console.setFormatter(fmt)
    LOG.addHandler(console)
    if not env.is_main:
        return None
    work_dir.mkdir(parents=True, exist_ok=True)
    path = work_dir / f"train_{datetime.now():%Y%m%d_%H%M%S}.log"
    fh = logging.FileHandler(path)
    fh.setFormatter(fmt)
    LOG.addHandler(fh)
    return path


def _tokenizer(model: torch.nn.Module):
    return model if stage_name_of_model(model) == "tokenizer" else getattr(model, "vae", None)


def stage_name_of_model(model: torch.nn.Module) -> str:
    return "world_model" if hasattr(model, "transformer") else "tokenizer"


def check_consistency(cfg: dict, bundle: DataBundle, model: torch.nn.Module, stage: str) -> None:
    """The data pipeline and the model must agree on grid and frame counts: say which key to change."""
    vae = _tokenizer(model)
    grid = tuple(getattr(vae, "grid_size", bundle.selection.shape))
    if tuple(grid) != tuple(bundle.selection.shape):
        raise ConfigError(f"the data grid selected by point_cloud_range/voxel_size is {bundle.selection.shape} but "
                          f"model.vae.grid_size is {tuple(grid)}: make them agree")
    if stage == "world_model":
        for key in ("history_frames", "future_frames"):
            if int(cfg[key]) != int(getattr(model, key)):
                raise ConfigError(f"{key} = {cfg[key]} (data) but model.{key} = {getattr(model, key)}: "
                                  "set both to the same value")


def build_optimizer(params: list[torch.nn.Parameter], cfg: dict) -> torch.optim.Optimizer:
    o = cfg["optimizer"]
    return torch.optim.AdamW(params, lr=float(o["lr"]), weight_decay=float(o.get("weight_decay", 0.01)),
                             betas=tuple(o.get("betas", (0.9, 0.999))), eps=float(o.get("eps", 1e-8)))


def trainable_params(model: torch.nn.Module, stage: str) -> list[torch.nn.Parameter]:
    if stage == "world_model":
        return list(model.trainable_parameters())
    return [p for p in model.parameters() if p.requires_grad]


class _TrainStep(torch.nn.Module):
    """forward() = model.forward_train(...), so DistributedDataParallel sees the training call."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, *args):
        return self.model.forward_train(*args)


# ------------------------------------------------------------------------------------------------ weights
def load_initial_weights(model: torch.nn.Module, cfg: dict, opts: RunOptions, stage: str) -> list[str]:
    """Fresh run: the pretrained file where shapes match (unless --from-scratch), then for the world model the
    trained tokenizer, then the 'tokenizer trained for this grid' guard. Returns lines for the log."""
    from occworld_tokyo.model import check_tokenizer_trained, load_pretrained

    notes: list[str] = []
    load_from = cfg.get("load_from")
    if opts.from_scratch:
        notes.append("--from-scratch: no pretrained weights loaded")
    elif load_from:
        if not Path(load_from).is_file():
            raise TrainingError(f"pretrained weights {load_from} (config load_from) not found. Download them "
                                "(guide, Quick Start step 1), or train without them: --from-scratch")
        load_pretrained(model, load_from, log=LOG.info)
        notes.append(f"pretrained weights loaded where shapes match from {load_from}")
    if stage == "world_model" and getattr(model, "freeze_vae", False):
        tok = cfg.get("tokenizer_checkpoint") or str(opts.work_dir / "tokenizer" / "best.pth")
        if Path(tok).is_file():
            load_pretrained(model, tok, log=LOG.info)
            notes.append(f"trained tokenizer loaded from {tok}")
        elif cfg.get("tokenizer_checkpoint"):
            raise TrainingError(f"tokenizer_checkpoint {tok} not found; train the tokenizer first: python train.py "
                                f"--config config/vqvae_tokyo.py --work-dir {opts.work_dir / 'tokenizer'}")
        check_tokenizer_trained(model)  # the model's own clear error when the frozen tokenizer is untrained
    return notes


def restore_model(model: torch.nn.Module, ckpt: dict, path: Path, stage: str) -> None:
    """Strict load of a training checkpoint; refuses a checkpoint of the other stage by name."""
    their_stage = ckpt.get("stage")
    if their_stage and their_stage != stage:
        raise TrainingError(f"{path} is a {their_stage} checkpoint but the config trains the {stage} "
                            f"(model.type {'VAERes2D' if stage == 'tokenizer' else 'TransVQVAE'}): wrong file/config")
    missing, unexpected = model.load_state_dict(ckpt["state_dict"], strict=False)
    if missing or unexpected:
        raise TrainingError(f"{path} does not fit the configured model: {len(missing)} missing keys "
                            f"(e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]}); "
                            "use the config it was trained with")
    grid = (ckpt.get("meta") or {}).get("tokenizer_grid")
    vae = _tokenizer(model)
    if grid is not None and vae is not None:
        vae.tokenizer_grid = tuple(int(v) for v in grid)


def make_payload(model, optimizer, scheduler, scaler, state: TrainState, cfg: dict, stage: str,
                 rng_states: list, world_size: int, vq_code_counts: torch.Tensor | None = None) -> dict:
    from occworld_tokyo.model import checkpoint_metadata

    meta = dict(checkpoint_metadata(model))
    meta.update({"torch": str(torch.__version__), "world_size": world_size, "time": datetime.now().isoformat()})
    payload = {
        "state_dict": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "epoch": state.epoch,
        "global_iter": state.global_iter,
        "iter_in_epoch": state.iter_in_epoch,
        "scaler": scaler.state_dict() if scaler is not None else {},
        "rng": rng_states,
        "best_val_loss": float(state.best_val_loss),
        "stage": stage,
        "config_json": json.dumps(cfg, default=str),
        "meta": meta,
    }
    if vq_code_counts is not None:
        payload["vq_code_counts"] = vq_code_counts  # dead-code restart: code choices since the last restart
    return payload


# ------------------------------------------------------------------------------------------------ the run
def run(cfg: dict, opts: RunOptions) -> dict[str, Any]:
    """Train (or, with eval_only, evaluate) as the config says. Returns the last evaluation's metrics."""
    # Denormal floats make CPU convolutions ~50x slower in the first steps of a fresh tokenizer (measured on the
    # tiny config: 6 s -> 0.1 s per step). Flush them to zero first thing: OpenMP worker threads inherit the
    # floating-point mode only from the thread that creates them.
    torch.set_flush_denormal(True)
    env = init_distributed(opts.gpu_ids)
    try:
        return _run(cfg, opts, env)
    finally:
        cleanup(env)


def _run(cfg: dict, opts: RunOptions, env: DistEnv) -> dict[str, Any]:
    from occworld_tokyo.model import build_model, mark_tokenizer_trained
    from occworld_tokyo.model.vae import codebook_usage

    work_dir = Path(opts.work_dir)
    log_path = setup_logging(work_dir, env)
    seed = int(cfg.get("seed", 42))
    seed_everything(seed, env.rank, bool(cfg.get("deterministic", True)))
    flushed = torch.set_flush_denormal(True)  # normally done already in run(), before any thread pool exists
    stage = stage_of(cfg)
    precision = choose_precision(cfg, env.device)
    LOG.info(f"occworld-tokyo {stage} run | config {opts.config_path} | work dir {work_dir} | log {log_path}")
    LOG.info(f"device {env.device} x {env.world_size} process(es) | {precision.note} | torch {torch.__version__} | "
             f"python {platform.python_version()} | seed {seed} | denormals flushed: {flushed}")

    bundle = build_datasets(cfg, with_instances_val=(stage == "world_model"))
    for note in bundle.notes:
        LOG.info(note)
    LOG.info(f"{len(bundle.train)} train windows, {len(bundle.val)} val windows "
             f"({cfg['history_frames']} history + {cfg['future_frames']} future frames) from "
             f"{len(bundle.sessions)} session(s) at {bundle.rate_hz} Hz")
    try:
        model = build_model(cfg["model"]).to(env.device)
    except (ValueError, TypeError, KeyError) as exc:
        raise ConfigError(f"{opts.config_path}: the model section cannot be built: {exc}") from exc
    check_consistency(cfg, bundle, model, stage)
    ev_cfg = dict(cfg.get("evaluation", {}))
    num_classes, free_index = int(cfg.get("num_classes", 14)), int(cfg.get("free_index", 0))
    data_cfg = cfg.get("data", {})
    batch_size = int(data_cfg.get("samples_per_gpu", 1))
    workers = int(data_cfg.get("workers_per_gpu", 0))
    val_loader = make_loader(bundle.val, batch_size, min(workers, 2), None)

    def run_eval(tag: str) -> dict:
        metrics, example = evaluate(model, val_loader, stage, bundle.selection.grid, bundle.rate_hz, env.device,
                                    precision, ev_cfg, num_classes, free_index, ev_cfg.get("max_samples"))
        return {"tag": tag, **metrics}, example

    # ---------------------------------------------------------------- eval only: never an untrained model
    if opts.eval_only:
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

    # ---------------------------------------------------------------- optimisation
    sampler = ResumableSampler(len(bundle.train), shuffle=True, seed=seed, rank=env.rank,
                               world_size=env.world_size, batch_size=batch_size)
    train_loader = make_loader(bundle.train, batch_size, workers, sampler,
                               pin_memory=bool(data_cfg.get("pin_memory", env.device.type == "cuda")),
                               prefetch_factor=int(data_cfg.get("prefetch_factor", 2)))
    iters_per_epoch = sampler.batches_per_epoch
    max_epochs = int(cfg["max_epochs"])
    total_iters = max_epochs * iters_per_epoch
    params = trainable_params(model, stage)
    optimizer = build_optimizer(params, cfg)
    scheduler = build_scheduler(optimizer, cfg, total_iters)
    scaler = precision.make_scaler(float(cfg.get("fp16", {}).get("init_scale", 2.0 ** 16)))
    state = TrainState()

    resume_path = Path(opts.resume_from) if opts.resume_from else (ckpt_io.find_latest(work_dir, LOG.warning)
                                                                    if opts.resume else None)
    if opts.resume and not opts.resume_from and resume_path is None:
        LOG.warning(f"--resume: no checkpoint in {work_dir} or {work_dir / 'checkpoints'}: starting a new run")
    if resume_path is not None:
        ckpt = ckpt_io.load_checkpoint(resume_path, map_location=env.device)
        restore_model(model, ckpt, resume_path, stage)
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        if scaler is not None and ckpt.get("scaler"):
            scaler.load_state_dict(ckpt["scaler"])
        state.epoch, state.global_iter = int(ckpt["epoch"]), int(ckpt["global_iter"])
        state.iter_in_epoch = int(ckpt.get("iter_in_epoch", 0))
        state.best_val_loss = float(ckpt.get("best_val_loss", math.inf))
        state.last_checkpoint = resume_path
        if stage == "tokenizer":
            restore_counts(model, ckpt.get("vq_code_counts"), env)
        rngs = ckpt.get("rng") or []
        if len(rngs) == env.world_size:
            ckpt_io.restore_rng(rngs[env.rank])
        else:
            LOG.warning(f"checkpoint written by {len(rngs)} process(es), now {env.world_size}: RNG states not "
                        "restored and the data position is approximate")
        if state.iter_in_epoch >= iters_per_epoch:
            state.epoch, state.iter_in_epoch = state.epoch + 1, 0
        LOG.info(f"resumed from {resume_path}: epoch {state.epoch} done, global step {state.global_iter}, "
                 f"{state.iter_in_epoch} batches into epoch {state.epoch + 1}, lr {scheduler.current_lr():.3g}")
        if stage == "world_model":
            from occworld_tokyo.model import check_tokenizer_trained
            check_tokenizer_trained(model)
    else:
        for note in load_initial_weights(model, cfg, opts, stage):
            LOG.info(note)

    n_train = sum(p.numel() for p in params)
    n_all = sum(p.numel() for p in model.parameters())
    LOG.info(f"{n_train:,} trainable of {n_all:,} parameters | AdamW lr {cfg['optimizer']['lr']} wd "
             f"{cfg['optimizer'].get('weight_decay', 0.01)} | warmup {scheduler.warmup_iters} it, cosine to "
             f"{scheduler.min_lr} over {total_iters} it ({iters_per_epoch}/epoch x {max_epochs} epochs) | "
             f"batch {batch_size}/process, {workers} loader workers")
    step_module: torch.nn.Module = _TrainStep(model)
    compile_cfg = cfg.get("compile") or {}
    if compile_cfg.get("enabled"):
        step_module = torch.compile(step_module, backend=compile_cfg.get("backend", "inductor"),
                                    mode=compile_cfg.get("mode"))
        LOG.info(f"torch.compile: backend {compile_cfg.get('backend', 'inductor')}, mode {compile_cfg.get('mode')} "
                 f"(the first steps compile)")
    if env.distributed:
        step_module = torch.nn.parallel.DistributedDataParallel(
            step_module, device_ids=[env.device.index] if env.device.type == "cuda" else None)

    writer = None
    if env.is_main:
        from torch.utils.tensorboard import SummaryWriter
        writer = SummaryWriter(log_dir=str(work_dir / "logs"))
    clip = cfg.get("grad_clip", {}) or {}
    max_norm = float(clip.get("max_norm", math.inf) or math.inf)
    log_every = int(cfg.get("log_config", {}).get("interval", 10))
    ckpt_every = int(cfg.get("checkpoint_config", {}).get("interval_iters", 0))
    eval_every = int(ev_cfg.get("interval", 1))
    max_skips = int(cfg.get("fp16", {}).get("max_consecutive_skips", 50))
    show_bar = opts.progress if opts.progress is not None else sys.stderr.isatty()
    bar = tqdm(total=total_iters, initial=state.global_iter, desc=stage, unit="it", dynamic_ncols=True,
               disable=not (env.is_main and show_bar))
    last_metrics: dict = {}

    def save(path: Path) -> None:
        rngs = all_gather_objects(ckpt_io.capture_rng(), env)
        vq_counts = counts_for_checkpoint(model, env) if stage == "tokenizer" else None
        if env.is_main:
            if stage == "tokenizer":
                mark_tokenizer_trained(model)  # the tokenizer in this file has been trained on this grid
            ckpt_io.save_checkpoint(path, make_payload(model, optimizer, scheduler, scaler, state, cfg, stage,
                                                       rngs, env.world_size, vq_counts))
        state.last_checkpoint = path
        barrier(env)

    window: dict[str, float] = {}
    t_window, n_window, data_wait, step_time = time.perf_counter(), 0, 0.0, 0.0
    model.train()
    try:
        while state.epoch < max_epochs:
            sampler.set_epoch(state.epoch, state.iter_in_epoch)
            t_data = time.perf_counter()
            for batch in train_loader:
                t_start = time.perf_counter()
                data_wait += t_start - t_data
                torch.manual_seed(step_seed(seed, env.rank, state.global_iter))
                occ = batch["occ"].to(env.device, non_blocking=True).long()
                inputs = (occ,) if stage == "tokenizer" else (occ, batch["poses"].to(env.device).float())
                with precision.autocast():
                    out = step_module(*inputs)
                loss = out["loss"]
                finite = all_reduce_mean(torch.isfinite(loss.detach()).float().reshape(1), env)
                if finite.item() < 1.0 and scaler is None:
                    where = [bundle.train.describe(int(i)) for i in _batch_indices(batch, bundle)]
                    raise NonFiniteLossError(
                        f"loss is {loss.item()} at epoch {state.epoch + 1}, iteration {state.iter_in_epoch + 1}/"
                        f"{iters_per_epoch} (global step {state.global_iter + 1}); batch {where}. Stopped; the last "
                        f"good checkpoint is kept: {state.last_checkpoint or 'none written yet'}. Try a lower --lr, "
                        "check the data (guide: Troubleshooting), then --resume")
                optimizer.zero_grad(set_to_none=True)
                if scaler is not None:
                    scaler.scale(loss).backward()
                    scaler.unscale_(optimizer)
                else:
                    loss.backward()
                grad_norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
                if scaler is not None:
                    before = scaler.get_scale()
                    scaler.step(optimizer)
                    scaler.update()
                    if scaler.get_scale() < before:
                        state.consecutive_skips += 1
                        LOG.warning(f"fp16: GradScaler skipped the optimizer step at global step "
                                    f"{state.global_iter + 1} (inf/NaN gradients; loss {loss.item():.4g}); "
                                    f"scale {before:g} -> {scaler.get_scale():g}")
                        if state.consecutive_skips > max_skips:
                            raise NonFiniteLossError(
                                f"{state.consecutive_skips} consecutive fp16 overflow skips up to global step "
                                f"{state.global_iter + 1}: the loss is not finite. Last good checkpoint: "
                                f"{state.last_checkpoint or 'none written yet'}")
                    else:
                        state.consecutive_skips = 0
                else:
                    optimizer.step()
                lr = optimizer.param_groups[0]["lr"]
                scheduler.step()
                state.global_iter += 1
                state.iter_in_epoch += 1
                step_time += time.perf_counter() - t_start
                n_window += occ.shape[0] * env.world_size
                for k, v in out.items():
                    if k != "pred" and torch.is_tensor(v) and v.numel() == 1:
                        window[k] = window.get(k, 0.0) + float(v.detach().float())
                window["grad_norm"] = window.get("grad_norm", 0.0) + float(grad_norm)
                if stage == "tokenizer":
                    if "indices" in out:
                        for k, v in codebook_usage(out["indices"], model.n_e).items():
                            window[k] = window.get(k, 0.0) + v
                    if restart_due(model, state.global_iter):
                        moved = restart_dead_codes(model, env, step_seed(seed, 0, state.global_iter))
                        window["codes_restarted"] = window.get("codes_restarted", 0.0) + moved
                window["_count"] = window.get("_count", 0.0) + 1
                bar.update(1)
                if state.global_iter % log_every == 0 or state.iter_in_epoch == iters_per_epoch:
                    _log_window(writer, window, lr, t_window, n_window, data_wait, step_time, env, state,
                                iters_per_epoch, total_iters, bar)
                    window, t_window, n_window, data_wait, step_time = {}, time.perf_counter(), 0, 0.0, 0.0
                if ckpt_every and state.global_iter % ckpt_every == 0 and state.iter_in_epoch < iters_per_epoch:
                    save(work_dir / "latest.pth")
                t_data = time.perf_counter()
            state.epoch += 1
            state.iter_in_epoch = 0
            is_last = state.epoch == max_epochs
            if state.epoch % eval_every == 0 or is_last:
                last_metrics = _evaluate_and_save(run_eval, save, state, work_dir, writer, env)
            elif ckpt_every:
                save(work_dir / "latest.pth")
    finally:
        bar.close()
        if writer is not None:
            writer.flush()
            writer.close()
    LOG.info(f"done: {state.epoch} epochs, {state.global_iter} steps; best val loss {state.best_val_loss:.5g}; "
             f"checkpoints in {work_dir}")
    return last_metrics


def _batch_indices(batch: dict, bundle: DataBundle) -> list[int]:
    """Dataset indices of a batch (via the window's (part, start) pair), for naming the samples of a bad step."""
    lookup = {tuple(s): i for i, s in enumerate(bundle.train.starts)}
    return [lookup.get((int(p), int(s)), -1) for p, s in batch["index"].tolist()]


_SUMMED = {"codes_restarted"}  # logged as the window's total, not its mean


def _log_window(writer, window: dict, lr: float, t_window: float, n_window: int, data_wait: float,
                step_time: float, env: DistEnv, state: TrainState, iters_per_epoch: int, total_iters: int,
                bar) -> None:
    count = max(1.0, window.pop("_count", 1.0))
    means = {k: v if k in _SUMMED else v / count for k, v in window.items()}
    dt = max(1e-9, time.perf_counter() - t_window)
    sps = n_window / dt
    mem = memory_mb(env.device)
    wait_frac = data_wait / max(1e-9, data_wait + step_time)
    eta_s = (total_iters - state.global_iter) * dt / max(1.0, count)
    if writer is not None:
        for k, v in means.items():
            writer.add_scalar(f"train/{k}", v, state.global_iter)
        writer.add_scalar("train/lr", lr, state.global_iter)
        writer.add_scalar("train/samples_per_s", sps, state.global_iter)
        writer.add_scalar("train/memory_mb", mem, state.global_iter)
        writer.add_scalar("train/data_wait_fraction", wait_frac, state.global_iter)
    bar.set_postfix(loss=f"{means.get('loss', float('nan')):.4f}", lr=f"{lr:.2e}")
    parts = " ".join(f"{k} {v:.4f}" for k, v in means.items())
    LOG.info(f"epoch {state.epoch + 1} it {state.iter_in_epoch}/{iters_per_epoch} step {state.global_iter}/"
             f"{total_iters} | {parts} | lr {lr:.3e} | {sps:.2f} samples/s | data wait {100 * wait_frac:.0f}% | "
             f"mem {mem:.0f} MB | ETA {_hms(eta_s)}")


def _hms(seconds: float) -> str:
    s = int(max(0, seconds))
    return f"{s // 3600:d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _evaluate_and_save(run_eval, save, state: TrainState, work_dir: Path, writer, env: DistEnv) -> dict:
    metrics: dict = {}
    if env.is_main:
        metrics, example = run_eval(f"epoch_{state.epoch}")
        metrics.update(epoch=state.epoch, global_iter=state.global_iter)
        improved = metrics["val_loss"] < state.best_val_loss
        if improved:
            state.best_val_loss = float(metrics["val_loss"])
        metrics["best_val_loss"] = state.best_val_loss
        metrics["is_best"] = improved
        path = write_metrics(work_dir, f"epoch_{state.epoch}", metrics)
        _tensorboard_eval(writer, metrics, example, state.global_iter)
        LOG.info(f"validation after epoch {state.epoch} -> {path}\n{format_metrics(metrics)}")
    flags = all_gather_objects((metrics.get("is_best", False), state.best_val_loss), env)
    improved, state.best_val_loss = flags[0]
    save(work_dir / f"epoch_{state.epoch}.pth")
    if improved:
        save(work_dir / "best.pth")
        state.last_checkpoint = work_dir / f"epoch_{state.epoch}.pth"
    return metrics


def write_metrics(work_dir: Path, name: str, metrics: dict) -> Path:
    out = work_dir / "metrics" / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(metrics, indent=2, default=_json_default) + "\n")
    os.replace(tmp, out)
    return out


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def format_metrics(m: dict) -> str:
    """A few readable lines: losses, tokenizer reconstruction, forecast vs baselines."""
    lines = ["  " + " ".join(f"{k} {v:.5g}" for k, v in m.items() if k.startswith("val_") and isinstance(v, float))]
    for key in ("recon", "recon_future"):
        if key in m:
            r = m[key]
            lines.append(f"  tokenizer reconstruction ({'val frames' if key == 'recon' else 'future frames'}): "
                         f"mIoU {_pct(r.get('miou'))} IoU {_pct(r.get('iou'))}")
    if "codebook" in m:
        c = m["codebook"]
        lines.append(f"  codebook: {c['codes_used']:.0f} of {c['n_e']} codes used on the val frames, "
                     f"perplexity {c['code_perplexity']:.1f}")
    for method, f in m.get("forecast", {}).items():
        vpq = m.get("vpq", {}).get(method, {}).get("vpq")
        lines.append(f"  {method:12s} mIoU 1/2/3s {_pct(f.get('miou_1s'))}/{_pct(f.get('miou_2s'))}/"
                     f"{_pct(f.get('miou_3s'))} avg {_pct(f.get('miou_avg'))} | IoU avg {_pct(f.get('iou_avg'))} | "
                     f"VPQ {_pct(vpq)}")
    for method, p in m.get("planning", {}).items():
        lines.append(f"  plan {method:18s} L2 1/2/3s {p.get('l2_1s', float('nan')):.2f}/"
                     f"{p.get('l2_2s', float('nan')):.2f}/{p.get('l2_3s', float('nan')):.2f} m | collision "
                     f"{_pct(p.get('collision_rate'))}")
    for note in m.get("notes", []):
        lines.append(f"  note: {note}")
    return "\n".join(lines)


def _pct(v) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}"


def _tensorboard_eval(writer, metrics: dict, example: dict, step: int) -> None:
    if writer is None:
        return
    from occworld_tokyo.reports.figures import side_by_side

    for k, v in metrics.items():
        if k.startswith("val_") and isinstance(v, float):
            writer.add_scalar(f"val/{k[4:]}", v, step)
    for key in ("recon", "recon_future"):
        for name in ("miou", "iou"):
            v = metrics.get(key, {}).get(name)
            if v is not None:
                writer.add_scalar(f"val/{key}_{name}", v, step)
    for k, v in (metrics.get("summary") or {}).items():
        if v is not None:
            writer.add_scalar(f"val/{k}", v, step)
    for k in ("codes_used", "code_perplexity"):
        if k in metrics.get("codebook", {}):
            writer.add_scalar(f"val/{k}", metrics["codebook"][k], step)
    if example:
        gt, pred = example["gt"], example["pred"]
        for t in range(gt.shape[0]):
            writer.add_image(f"val_bev/step{t + 1}_gt_vs_pred", side_by_side(gt[t], pred[t], view="bev"), step,
                             dataformats="HWC")
            writer.add_image(f"val_side/step{t + 1}_gt_vs_pred", side_by_side(gt[t], pred[t], view="side"), step,
                             dataformats="HWC")
