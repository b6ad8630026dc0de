"""What differs between the two training stages, in one object per stage.

The stage is derived from the model's class in one place, `stage_for(model)`:
    VAERes2D   -> TokenizerStage   (stage 1: `VAERes2D.forward_train(occ)`, dead-code restarts, codebook use)
    TransVQVAE -> WorldModelStage  (stage 2: `TransVQVAE.forward_train(occ, poses)` on a frozen, trained tokenizer)
Its `name` ('tokenizer' / 'world_model') is what checkpoints store under 'stage'.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from occworld_tokyo.config import ConfigError
from occworld_tokyo.errors import UserError


class TrainingError(UserError):
    """The run cannot start or go on; the message says why and what to do."""


class Stage:
    name = ""
    model_type = ""
    with_instances_val = False  # validation windows carry instance ids (VPQ)

    def tokenizer(self, model: torch.nn.Module):
        raise NotImplementedError

    def inputs(self, batch: dict, device: torch.device) -> tuple:
        """The arguments of `model.forward_train` for one training batch (occupancy as long, poses as float32)."""
        raise NotImplementedError

    def prepare_training(self, model: torch.nn.Module, grid=None) -> None:
        """Per-run state the training steps need (called once, before the first step); `grid` = the data's
        GridSpec."""

    def train_visibility(self, model: torch.nn.Module, cfg: dict) -> str | None:
        """The visibility mask the training windows must carry (None: none)."""
        return None

    def validate(self, model: torch.nn.Module, loader, **kw) -> tuple[dict, dict, int]:
        """This stage's validation pass (training/evaluate.py): (metrics, example arrays, windows evaluated)."""
        raise NotImplementedError

    def trainable_params(self, model: torch.nn.Module) -> list[torch.nn.Parameter]:
        return [p for p in model.parameters() if p.requires_grad]

    def check_consistency(self, cfg: dict, selection_shape: tuple, model: torch.nn.Module) -> None:
        """The data pipeline and the model agree on the grid (and frame counts): else name the key to change."""
        grid = tuple(getattr(self.tokenizer(model), "grid_size", selection_shape))
        if grid != tuple(selection_shape):
            raise ConfigError(f"the data grid selected by point_cloud_range/voxel_size is {tuple(selection_shape)} "
                              f"but model.vae.grid_size is {grid}: make them agree")

    def initial_weights(self, model: torch.nn.Module, cfg: dict, work_dir: Path, from_scratch: bool,
                        log: Callable[[str], object]) -> list[str]:
        """Fresh run: the pretrained file where shapes match (unless --from-scratch). Returns lines for the log."""
        from occworld_tokyo.model import load_pretrained

        load_from = cfg.get("load_from")
        if from_scratch:
            return ["--from-scratch: no pretrained weights loaded"]
        if not load_from:
            return []
        if not Path(load_from).is_file():
            raise TrainingError(f"pretrained weights {load_from} (config load_from) not found. Download them "
                                "(guide, Quick Start step 1), or train without them: --from-scratch")
        load_pretrained(model, load_from, log=log)
        return [f"pretrained weights loaded where shapes match from {load_from}"]

    def after_restore(self, model: torch.nn.Module) -> None:
        """Checks once the weights are in place (resume / eval-only)."""

    def before_save(self, model: torch.nn.Module) -> None:
        """Marks to set on the model before its weights are written."""

    def checkpoint_extras(self, model: torch.nn.Module, env) -> dict:
        """Extra checkpoint entries (collective: call on every process)."""
        return {}

    def restore_extras(self, model: torch.nn.Module, ckpt: dict, env) -> None:
        """Resume the extras of checkpoint_extras."""

    def after_step(self, model: torch.nn.Module, out: dict, window: dict, global_iter: int, env, seed: int) -> None:
        """Per-step work and statistics beyond the loss (added into the log window)."""


class TokenizerStage(Stage):
    name, model_type = "tokenizer", "VAERes2D"

    def tokenizer(self, model):
        return model

    def inputs(self, batch, device):
        return (batch["occ"].to(device, non_blocking=True).long(),)

    def validate(self, model, loader, **kw):
        from occworld_tokyo.training.evaluate import evaluate_tokenizer

        return evaluate_tokenizer(model, loader, **kw)

    def before_save(self, model):
        from occworld_tokyo.model import mark_tokenizer_trained

        mark_tokenizer_trained(model)  # the tokenizer in this file has been trained on this grid

    def checkpoint_extras(self, model, env):
        from occworld_tokyo.training.codebook import counts_for_checkpoint

        counts = counts_for_checkpoint(model, env)
        return {} if counts is None else {"vq_code_counts": counts}  # code choices since the last restart

    def restore_extras(self, model, ckpt, env):
        from occworld_tokyo.training.codebook import restore_counts

        restore_counts(model, ckpt.get("vq_code_counts"), env)

    def after_step(self, model, out, window, global_iter, env, seed):
        from occworld_tokyo.model.vae import codebook_usage
        from occworld_tokyo.training.codebook import restart_dead_codes, restart_due
        from occworld_tokyo.training.state import step_seed

        if "indices" in out:
            for k, v in codebook_usage(out["indices"], model.n_e).items():
                window[k] = window.get(k, 0.0) + v
        if restart_due(model, global_iter):
            moved = restart_dead_codes(model, env, step_seed(seed, 0, global_iter))
            window["codes_restarted"] = window.get("codes_restarted", 0.0) + moved


class WorldModelStage(Stage):
    name, model_type = "world_model", "TransVQVAE"
    with_instances_val = True

    def tokenizer(self, model):
        return model.vae

    def __init__(self) -> None:
        self.frame_codes = None  # training/code_cache.FrameCodes while a frozen tokenizer trains stage 2
        self.gate_grid = None    # the data grid, when the model has a learned voxel gate (its input is the warp)
        self.history = 0

    def prepare_training(self, model, grid=None):
        from occworld_tokyo.training.code_cache import FrameCodes

        self.frame_codes = FrameCodes(model.vae) if getattr(model, "freeze_vae", False) else None
        if getattr(model, "gated", False):
            if grid is None:
                raise ValueError("a gated world model trains on the warped last frame: prepare_training needs the grid")
            self.gate_grid, self.history = grid, int(model.history_frames)

    def inputs(self, batch, device):
        occ, poses = batch["occ"].to(device, non_blocking=True).long(), batch["poses"].to(device).float()
        codes = None if self.frame_codes is None else self.frame_codes.lookup(occ, batch["index"])
        if self.gate_grid is None:
            return (occ, poses) if codes is None else (occ, poses, codes)
        from occworld_tokyo.evaluation.forecasts import ego_frames, gate_inputs

        warp = gate_inputs(occ[:, :self.history], ego_frames(batch["ego"].numpy()), self.history, self.gate_grid)
        if "visible" in batch:  # a gate trained on the camera-visible voxels too (train_visibility)
            warp["visible"] = batch["visible"][:, self.history:].to(device)
        return occ, poses, codes, warp

    def train_visibility(self, model, cfg):
        gate = model.plan.gate if getattr(model, "gated", False) else None
        if gate is None or gate.visible_weight <= 0.0:
            return None
        visibility = cfg["evaluation"]["visibility"]
        if not visibility:
            raise ConfigError("model.plan.gate.visible_weight > 0 trains on the camera-visible voxels: set "
                              "evaluation.visibility (e.g. 'camera') or visible_weight=0")
        return visibility

    def trainable_params(self, model):
        return list(model.trainable_parameters())

    def validate(self, model, loader, **kw):
        from occworld_tokyo.training.evaluate import evaluate_world_model

        return evaluate_world_model(model, loader, **kw)

    def check_consistency(self, cfg, selection_shape, model):
        super().check_consistency(cfg, selection_shape, model)
        if int(cfg["future_frames"]) < 1:  # config.check_relations refuses it first; a model built otherwise too
            raise ConfigError(f"future_frames = {cfg['future_frames']} must be >= 1 for the world model (stage 2 "
                              "forecasts the future frames)")
        for key in ("history_frames", "future_frames"):
            if int(cfg[key]) != int(getattr(model, key)):
                raise ConfigError(f"{key} = {cfg[key]} (data) but the model was built with {key} = "
                                  f"{getattr(model, key)}: set {key} once, at the top level of the config")

    def initial_weights(self, model, cfg, work_dir, from_scratch, log):
        """Then the trained tokenizer of a FINISHED stage-1 run, then the 'tokenizer trained for this grid' guard."""
        from occworld_tokyo.model import check_tokenizer_trained, load_pretrained

        notes = super().initial_weights(model, cfg, work_dir, from_scratch, log)
        if getattr(model, "freeze_vae", False):
            tok = Path(cfg.get("tokenizer_checkpoint") or work_dir / "tokenizer" / "best.pth")
            if tok.is_file():
                check_tokenizer_run_complete(tok)
                load_pretrained(model, tok, log=log)
                notes.append(f"trained tokenizer loaded from {tok}")
            elif cfg.get("tokenizer_checkpoint"):
                raise TrainingError(f"tokenizer_checkpoint {tok} not found; train the tokenizer first: python "
                                    f"train.py --config config/vqvae_tokyo.py --work-dir {work_dir / 'tokenizer'}")
            check_tokenizer_trained(model)  # the model's own clear error when the frozen tokenizer is untrained
        return notes

    def after_restore(self, model):
        from occworld_tokyo.model import check_tokenizer_trained

        check_tokenizer_trained(model)


def check_tokenizer_run_complete(path: Path) -> None:
    """Refuse the best.pth of a stage-1 run that did not reach its last epoch (interrupted, or still running)."""
    import json

    from occworld_tokyo.training.checkpoint import load_checkpoint

    ckpt = load_checkpoint(path, mmap=True, verify=False)  # load_pretrained verifies when it reads the weights
    if ckpt.get("stage") != "tokenizer" or ckpt.get("run_complete"):
        return
    total = json.loads(ckpt.get("config_json") or "{}").get("max_epochs", "?")
    raise TrainingError(f"the tokenizer {path} comes from a stage-1 run that has not finished (epoch "
                        f"{ckpt.get('epoch')} of {total}): finish it with python train.py --config "
                        f"<its tokenizer config> --work-dir {path.parent} --resume, then start stage 2")



def stage_for(model: torch.nn.Module) -> Stage:
    """The stage object of a built model, from its class."""
    from occworld_tokyo.model import TransVQVAE, VAERes2D

    if isinstance(model, VAERes2D):
        return TokenizerStage()
    if isinstance(model, TransVQVAE):
        return WorldModelStage()
    raise ConfigError(f"model.type builds a {type(model).__name__}; training knows VAERes2D (stage 1) and "
                      "TransVQVAE (stage 2)")
