"""Loading released / project checkpoints into a model, and the "was the tokenizer trained for this grid?" guard.

`load_pretrained(model, path)` accepts
* the released OccWorld file `{'state_dict', 'optimizer', 'scheduler', 'epoch', 'global_iter'}`,
* a project checkpoint (same layout, plus `meta` from `checkpoint_metadata(model)`),
* a bare state_dict,
with `module.` (DDP) and `_orig_mod.` (torch.compile) prefixes stripped. A VQVAE-stage file (keys without `vae.`)
loads into a world model's `vae`; a world-model file loads into a tokenizer by taking its `vae.` keys. Every
tensor whose name and shape match is loaded; a table per module (loaded / shape mismatch / missing / unexpected)
is logged; loading nothing raises.

Files are read with `torch.load(weights_only=True)`; one that needs pickled Python objects is refused unless the
caller opts in (`allow_pickle=True`, the `--allow-pickle` flag), since unpickling runs arbitrary code.

This module is the one reader of checkpoint files (`read_checkpoint`) and holds the one `CheckpointError`: the
training side (`occworld_tokyo.training.checkpoint`) writes through `save_checkpoint` and reads through here.
Every read verifies before anything uses the weights: all floating-point tensors of the state_dict finite, and
for files written by this project the content checksum (`checksum`: SHA-256 over names, dtypes, shapes and
bytes of the state_dict, `state_checksum`) equal to the stored one.

Tokenizer provenance: the state_dict of the released model has no room for metadata (parity), so the fact that
a tokenizer is trained for a grid lives in the attribute `vae.tokenizer_grid = (X, Y, Z, num_classes)`, saved in
checkpoints under `meta['tokenizer_grid']` (`checkpoint_metadata`) and restored by `load_pretrained`.
`check_tokenizer_trained(model)` refuses a world model whose frozen tokenizer was never trained for its grid.
"""

from __future__ import annotations

import hashlib
import pickle
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn

from ..errors import UserError
from .vae import VAERes2D

DOWNLOAD_COMMAND = ("mkdir -p pretrained/occworld && curl -L -o pretrained/occworld/latest.pth "
                    "'https://cloud.tsinghua.edu.cn/d/ff4612b2453841fba7a5/files/?p=/latest.pth&dl=1'")
_PREFIXES = ("module.", "_orig_mod.")


class CheckpointError(UserError):
    """A checkpoint that cannot be found, read, verified or used; the message names the file and the fix."""


class TokenizerNotTrainedError(UserError):
    """The world model would train on a frozen tokenizer that was never trained for its grid and classes."""


@dataclass
class ModuleReport:
    loaded: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)  # name, file, model
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)


@dataclass
class LoadReport:
    """What load_pretrained did, per module (`vae.encoder`, `vae.decoder`, `vae.vqvae`, `vae.class_embeds`,
    `transformer`, `pose_encoder`, `pose_decoder`; without `vae.` for a bare tokenizer)."""

    path: str
    modules: dict[str, ModuleReport]
    tokenizer_grid: tuple[int, ...] | None = None

    def _all(self, attr: str) -> list:
        return [item for report in self.modules.values() for item in getattr(report, attr)]

    @property
    def loaded(self) -> list[str]:
        return self._all("loaded")

    @property
    def mismatched(self) -> list[tuple[str, tuple[int, ...], tuple[int, ...]]]:
        return self._all("mismatched")

    @property
    def missing(self) -> list[str]:
        return self._all("missing")

    @property
    def unexpected(self) -> list[str]:
        return self._all("unexpected")

    def table(self) -> str:
        rows = [f"{'module':<20} {'loaded':>7} {'mismatch':>9} {'missing':>8} {'unexpected':>11}"]
        for name, r in self.modules.items():
            rows.append(f"{name:<20} {len(r.loaded):>7} {len(r.mismatched):>9} {len(r.missing):>8} "
                        f"{len(r.unexpected):>11}")
        rows.append(f"{'total':<20} {len(self.loaded):>7} {len(self.mismatched):>9} {len(self.missing):>8} "
                    f"{len(self.unexpected):>11}")
        for name, file_shape, model_shape in self.mismatched:
            rows.append(f"  shape mismatch {name}: file {list(file_shape)} vs model {list(model_shape)}")
        return "\n".join(rows)

    def parameter_table(self, model: nn.Module) -> str:
        """Per module: tensors and parameters loaded from the file vs left fresh (random init: shape mismatch or
        missing in the file), the fine-tuning view of `table()` (docs/model.md, "Fine-tuning from the release")."""
        own = model.state_dict()
        rows = [f"{'module':<20} {'tensors loaded':>15} {'fresh':>6} {'params loaded':>14} {'params fresh':>13}"]
        totals = [0, 0, 0, 0]
        for name, r in self.modules.items():
            fresh = r.missing + [n for n, _, _ in r.mismatched]
            counts = [len(r.loaded), len(fresh), sum(own[n].numel() for n in r.loaded),
                      sum(own[n].numel() for n in fresh)]
            if not any(counts):
                continue
            totals = [a + b for a, b in zip(totals, counts)]
            rows.append(f"{name:<20} {counts[0]:>15,} {counts[1]:>6,} {counts[2]:>14,} {counts[3]:>13,}")
        rows.append(f"{'total':<20} {totals[0]:>15,} {totals[1]:>6,} {totals[2]:>14,} {totals[3]:>13,}")
        return "\n".join(rows)


def _module_of(name: str) -> str:
    """Report group of a tensor name: `vae.<part>` inside a world model, else the top-level module."""
    parts = name.split(".")
    return ".".join(parts[:2]) if parts[0] == "vae" and len(parts) > 2 else parts[0]


def _strip_prefixes(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = OrderedDict()
    for key, value in state.items():
        changed = True
        while changed:
            changed = False
            for prefix in _PREFIXES:
                if key.startswith(prefix):
                    key, changed = key[len(prefix):], True
        out[key] = value
    return out


def read_checkpoint(path: str | Path, *, allow_pickle: bool = False, map_location: str | torch.device = "cpu",
                    mmap: bool = False, verify: bool = True) -> Any:
    """torch.load a checkpoint file, refusing pickled objects unless allow_pickle; with `verify` (the default)
    the state_dict is checked (`verify_checkpoint`) before it is returned. Returns the raw object."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"pretrained checkpoint not found: {path}\n"
            f"Download the released OccWorld weights with:\n  {DOWNLOAD_COMMAND}\n"
            f"or train from scratch with --from-scratch.")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=not allow_pickle, mmap=mmap)
    except pickle.UnpicklingError as exc:
        if allow_pickle:
            raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from exc
        raise CheckpointError(
            f"checkpoint {path} contains pickled Python objects, which torch.load(weights_only=True) refuses "
            f"(unpickling can run arbitrary code). If you trust this file, save its tensors alone and give that file: "
            f"python -c \"import torch; torch.save(torch.load('{path}', weights_only=False)['state_dict'], "
            f"'weights.pth')\" (`occworld-tokyo model --pretrained FILE --allow-pickle` reads it as it is). "
            f"Details: {str(exc).splitlines()[0]}") from exc
    except Exception as exc:  # noqa: BLE001 - truncated / not a torch file: one message, whatever torch raised
        raise CheckpointError(f"cannot read checkpoint {path} ({str(exc).splitlines()[0] if str(exc) else exc!r}): "
                              "the file is damaged or not a PyTorch checkpoint; use another checkpoint (for a "
                              "training run: delete this file and --resume from the one before)") from exc
    if verify:
        verify_checkpoint(obj, path)
    return obj


def state_checksum(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 over the sorted names, dtypes, shapes and bytes of a state_dict (device and storage layout aside)."""
    digest = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def verify_checkpoint(obj: Any, path: str | Path) -> None:
    """Refuse a checkpoint whose state_dict holds NaN/Inf or whose stored `checksum` does not match its content."""
    state = obj.get("state_dict", obj.get("model")) if isinstance(obj, dict) else None
    if not isinstance(state, dict):
        state = obj if isinstance(obj, dict) else {}
    bad = [k for k, v in state.items() if isinstance(v, torch.Tensor) and v.is_floating_point()
           and not bool(torch.isfinite(v).all())]
    if bad:
        raise CheckpointError(f"checkpoint {path} holds non-finite values (NaN/Inf) in {len(bad)} tensor(s), e.g. "
                              f"{bad[:3]}: it is corrupt or from a diverged run; use an earlier checkpoint")
    stored = obj.get("checksum") if isinstance(obj, dict) else None
    if stored is not None:
        tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
        if state_checksum(tensors) != stored:
            raise CheckpointError(f"checkpoint {path} fails its content checksum (its weights changed after it was "
                                  "written: disk or copy damage): use an earlier checkpoint or copy it again")


def extract_state_dict(obj: Any) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """A loaded checkpoint object -> (state_dict with prefixes stripped, meta dict)."""
    meta: dict[str, Any] = {}
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        state, meta = obj["state_dict"], dict(obj.get("meta") or {})
    elif isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        state, meta = obj["model"], dict(obj.get("meta") or {})
    elif isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        state = obj
    else:
        raise CheckpointError("checkpoint holds neither a 'state_dict' nor a bare state_dict of tensors")
    return _strip_prefixes({k: v for k, v in state.items() if isinstance(v, torch.Tensor)}), meta


def _align_to_model(state: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Map VQVAE-stage keys into a world model (`vae.` prefix) and world-model keys into a tokenizer."""
    is_tokenizer = isinstance(model, VAERes2D)
    has_vae_prefix = any(k.startswith("vae.") for k in state)
    if not is_tokenizer and hasattr(model, "vae") and not has_vae_prefix and "class_embeds.weight" in state:
        return OrderedDict((f"vae.{k}", v) for k, v in state.items())
    if is_tokenizer and has_vae_prefix:
        return OrderedDict((k[4:], v) for k, v in state.items() if k.startswith("vae."))
    return state


def _tokenizer(model: nn.Module) -> VAERes2D | None:
    if isinstance(model, VAERes2D):
        return model
    vae = getattr(model, "vae", None)
    return vae if isinstance(vae, VAERes2D) else None


def load_pretrained(model: nn.Module, path: str | Path, *, allow_pickle: bool = False,
                    log: Callable[[str], Any] = print) -> LoadReport:
    """Load every tensor of the checkpoint at `path` whose name and shape match `model`; log a per-module table.

    Raises CheckpointError when the file is missing (message has the download command), needs pickle without
    allow_pickle, or when no tensor at all could be loaded. Marks the tokenizer as trained for its grid when all
    of its tensors loaded and either the file's `meta['tokenizer_grid']` equals the model's (X, Y, Z, classes)
    or the file has no `meta` entry for it (a foreign file such as the released checkpoint).
    """
    state, meta = extract_state_dict(read_checkpoint(path, allow_pickle=allow_pickle))
    state = _align_to_model(state, model)
    own = model.state_dict()
    modules: dict[str, ModuleReport] = OrderedDict()
    to_load: dict[str, torch.Tensor] = {}
    for name, param in own.items():
        report = modules.setdefault(_module_of(name), ModuleReport())
        if name not in state:
            report.missing.append(name)
        elif tuple(state[name].shape) != tuple(param.shape):
            report.mismatched.append((name, tuple(state[name].shape), tuple(param.shape)))
        else:
            report.loaded.append(name)
            to_load[name] = state[name]
    for name in state:
        if name not in own:
            modules.setdefault(_module_of(name), ModuleReport()).unexpected.append(name)
    result = LoadReport(path=str(path), modules=modules)
    if not to_load:
        log(result.table())
        raise CheckpointError(f"nothing in {path} matches the model (0 of {len(own)} tensors): wrong file or "
                              f"wrong config (see the table above; `occworld-tokyo model --config ... --json` "
                              f"lists what the config builds)")
    model.load_state_dict(to_load, strict=False)

    vae = _tokenizer(model)
    if vae is not None:
        prefix = "" if vae is model else "vae."
        vae_names = [n for n in own if n.startswith(prefix)]
        complete = all(n in to_load for n in vae_names)
        file_grid = meta.get("tokenizer_grid")
        # a project checkpoint always has meta['tokenizer_grid'] (None = never trained); a foreign file (the
        # released one) has no meta: a complete tokenizer of the same shapes counts as trained for this grid
        foreign = "tokenizer_grid" not in meta
        if complete and (foreign or (file_grid is not None and tuple(file_grid) == vae.grid_signature())):
            vae.tokenizer_grid = vae.grid_signature()
            result.tokenizer_grid = vae.tokenizer_grid
        elif complete and file_grid is not None:
            log(f"note: the tokenizer in {path} was trained for grid/classes {tuple(file_grid)}, "
                f"the model is configured for {vae.grid_signature()}")
    log(f"loaded {len(result.loaded)}/{len(own)} tensors from {path}")
    log(result.table())
    if result.mismatched and vae is not None:
        log("tensors whose shape depends on the height count, the class count or the widths (conv_in, conv_out, "
            "class_embeds, codebook, quant convs, transformer widths) are NOT transferred and start from random")
    return result


def mark_tokenizer_trained(model: nn.Module) -> None:
    """Record that the model's tokenizer is trained for its configured grid and classes (call after training
    the VQVAE stage, before saving)."""
    vae = _tokenizer(model)
    if vae is None:
        raise TypeError("model has no VAERes2D tokenizer")
    vae.tokenizer_grid = vae.grid_signature()


def checkpoint_metadata(model: nn.Module) -> dict[str, Any]:
    """What to store under checkpoint['meta'] so that load_pretrained restores the tokenizer's provenance."""
    vae = _tokenizer(model)
    grid = None if vae is None or vae.tokenizer_grid is None else list(vae.tokenizer_grid)
    return {"tokenizer_grid": grid}


def check_tokenizer_trained(model: nn.Module) -> None:
    """Raise TokenizerNotTrainedError when a world model would train on a frozen tokenizer that was not trained
    (or loaded from a checkpoint trained) for its grid and classes. No-op when the tokenizer is not frozen."""
    vae = _tokenizer(model)
    if vae is None or vae is model or not getattr(model, "freeze_vae", False):
        return
    if vae.tokenizer_grid != vae.grid_signature():
        have = "never trained" if vae.tokenizer_grid is None else f"trained for {vae.tokenizer_grid}"
        X, Y, Z, C = vae.grid_signature()
        raise TokenizerNotTrainedError(
            f"the frozen tokenizer (freeze_vae=True) is {have}, not for this grid {X}x{Y}x{Z} with {C} classes: "
            f"the world model would learn to predict meaningless codes (OccWorld users see IoU 0 this way). "
            f"Fix: train the tokenizer first with config/vqvae_tokyo.py (scripts/run_training.sh does it) and "
            f"load its checkpoint, or set model.freeze_vae=False.")
