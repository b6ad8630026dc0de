"""Checkpoints: OccWorld's format, written atomically, read with `torch.load(weights_only=True)`.

Contents (only tensors and plain Python types, so the safe loader reads them):
    state_dict      the unwrapped model (no `module.` prefix), OccWorld's key names
    optimizer       AdamW state_dict
    scheduler       WarmupCosine.state_dict() (plain numbers)
    epoch           epochs completed when written (OccWorld convention: epoch_5.pth has epoch = 5)
    global_iter     optimizer steps taken
    iter_in_epoch   batches of the next epoch already trained (0 at epoch ends; > 0 in mid-epoch latest.pth)
    scaler          GradScaler state_dict (fp16 on CUDA) or {}
    rng             per rank: torch / numpy / python (/ cuda) generator states as uint8/int64 tensors
    best_val_loss   lowest validation loss so far (inf before the first evaluation)
    stage           'tokenizer' or 'world_model'
    config_json     the resolved config as JSON text
    meta            {'torch': version, 'world_size': n, 'time': iso time}
    checksum        SHA-256 of the state_dict's content (`model.checkpoint.state_checksum`), added on save
    part_checksums  {key: SHA-256} of every other key's content (optimizer moments, scheduler, RNG states,
                    position, config, ...), added on save (`part_checksum`)
    best_epoch      the epoch whose weights best.pth holds (0: none yet); epoch ends also carry
    metrics_json    that evaluation's metrics, so best.pth and metrics/ can be rebuilt after an interruption
    run_complete    True only in the best.pth of a run that reached max_epochs (stage 2 refuses a tokenizer
                    without it)

Reading goes through `occworld_tokyo.model.checkpoint.read_checkpoint` (the one reader: weights-only, finite
tensors, checksum) and its `CheckpointError`; `load_checkpoint` then checks the WHOLE file before a run uses it
(`check_training_state`): every part against its checksum, the optimizer's tensors finite, the RNG states of the
shapes this code writes, the position in range. Writing refuses a payload whose weights or optimizer state are
not finite, so the file already on disk (the last good one) stays.
Newest checkpoint = largest (epoch, global_iter) read FROM THE FILES, never from file names.
"""

from __future__ import annotations

import hashlib
import math
import os
import pickle
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from occworld_tokyo.model.checkpoint import CheckpointError, read_checkpoint, state_checksum

CHECKPOINT_KEYS = ("state_dict", "optimizer", "scheduler", "epoch", "global_iter")


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write atomically: a temporary file in the same folder, flushed to disk, then renamed over `path`.
    A payload with a state_dict gets its content `checksum`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    bad = _non_finite(payload.get("state_dict"), "state_dict") + _non_finite(payload.get("optimizer"), "optimizer")
    if bad:
        raise CheckpointError(f"{path} was not written: {len(bad)} tensor(s) hold NaN/Inf (e.g. {bad[:3]}), so the "
                              "run has diverged; the checkpoint already on disk is kept. Resume from it with a lower "
                              "--lr (or check the data)")
    payload = {k: v for k, v in payload.items() if k not in ("checksum", "part_checksums")}
    if isinstance(payload.get("state_dict"), dict):
        payload["checksum"] = state_checksum(payload["state_dict"])
    payload["part_checksums"] = {k: part_checksum(v) for k, v in payload.items() if k not in UNPARTED}
    return _write_atomically(path, lambda f: torch.save(payload, f))


UNPARTED = ("state_dict", "checksum", "part_checksums")  # the state_dict has its own `checksum`


def part_checksum(value: Any) -> str:
    """SHA-256 of a checkpoint part's content: nested dicts (keys in order of their repr), lists, tensors (dtype,
    shape, bytes) and plain values, whatever device or storage layout the tensors have."""
    digest = hashlib.sha256()
    _feed(digest, value)
    return digest.hexdigest()


def _feed(digest, value: Any) -> None:
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous()
        digest.update(f"T|{t.dtype}|{tuple(t.shape)}|".encode())
        if t.numel():
            digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(value, dict):
        digest.update(f"D{len(value)}|".encode())
        for key in sorted(value, key=repr):
            digest.update(f"{key!r}=".encode())
            _feed(digest, value[key])
    elif isinstance(value, (list, tuple)):
        digest.update(f"L{len(value)}|".encode())
        for item in value:
            _feed(digest, item)
    else:
        digest.update(f"{type(value).__name__}|{value!r}|".encode())


def _tensors(value: Any, where: str):
    """(name, tensor) of every tensor inside a nested checkpoint part."""
    if isinstance(value, torch.Tensor):
        yield where, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _tensors(item, f"{where}.{key}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _tensors(item, f"{where}[{i}]")


def _non_finite(value: Any, where: str) -> list[str]:
    return [name for name, t in _tensors(value, where) if t.is_floating_point() and not bool(torch.isfinite(t).all())]


POSITION_KEYS = ("epoch", "global_iter", "iter_in_epoch", "best_epoch")


def check_training_state(ckpt: dict, path: Path) -> None:
    """Refuse, naming the file and the key, a checkpoint any part of which is changed, not finite, or out of
    range: what resume restores besides the weights (the state_dict has `verify_checkpoint`)."""
    def refuse(what: str) -> None:
        raise CheckpointError(f"checkpoint {path}: {what}; the file is damaged or was edited. Use an earlier "
                              "checkpoint: --resume-from <work-dir>/epoch_N.pth (or delete this file and --resume)")

    stored = ckpt.get("part_checksums")
    if stored is not None:
        if not isinstance(stored, dict):
            refuse("'part_checksums' is not a dict")
        for key, digest in stored.items():
            if key not in ckpt:
                refuse(f"key '{key}' is missing (it was written with the file)")
            if part_checksum(ckpt[key]) != digest:
                refuse(f"'{key}' fails its checksum (its content changed after it was written)")
    bad = _non_finite(ckpt.get("optimizer"), "optimizer")
    if bad:
        refuse(f"the optimizer state holds NaN/Inf in {len(bad)} tensor(s), e.g. {bad[:3]}")
    for key in POSITION_KEYS:
        value = ckpt.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            refuse(f"'{key}' = {value!r} must be a whole number >= 0")
    if ckpt.get("best_epoch", 0) > ckpt.get("epoch", 0):
        refuse(f"'best_epoch' = {ckpt['best_epoch']} is after 'epoch' = {ckpt.get('epoch', 0)}")
    best = ckpt.get("best_val_loss", math.inf)
    if isinstance(best, bool) or not isinstance(best, (int, float)) or math.isnan(best):
        refuse(f"'best_val_loss' = {best!r} must be a number (inf before the first evaluation)")
    for key in ("optimizer", "scheduler"):
        if key in ckpt and not isinstance(ckpt[key], dict):
            refuse(f"'{key}' is a {type(ckpt[key]).__name__}, not a state dict")
    rngs = ckpt.get("rng")
    if rngs is not None:
        if not isinstance(rngs, list):
            refuse("'rng' is not a list of per-process states")
        for rank, state in enumerate(rngs):
            problem = rng_state_problem(state)
            if problem:
                refuse(f"'rng[{rank}]' {problem}")


def rng_state_problem(state: Any) -> str:
    """What is wrong with one process's RNG state as `capture_rng` writes it ('' when nothing)."""
    if not isinstance(state, dict):
        return "is not a dict of generator states"
    want = {"torch": (torch.uint8, tuple(torch.get_rng_state().shape)), "numpy_keys": (torch.int64, (624,)),
            "numpy_meta": (torch.int64, (2,)), "numpy_gauss": (torch.float64, (1,)), "python": (torch.int64, (626,))}
    for key, (dtype, shape) in want.items():
        t = state.get(key)
        if not isinstance(t, torch.Tensor) or t.dtype != dtype or tuple(t.shape) != shape:
            got = f"{t.dtype} {tuple(t.shape)}" if isinstance(t, torch.Tensor) else type(t).__name__
            return f"has '{key}' of {got}, not {dtype} {shape}"
    keys, (pos, has_gauss) = state["numpy_keys"], state["numpy_meta"].tolist()
    if not (0 <= pos <= 624 and has_gauss in (0, 1)) or bool(((keys < 0) | (keys >= 2 ** 32)).any()):
        return "holds a numpy generator state out of range"
    py = state["python"]
    if int(py[0]) != 3 or bool(((py[1:625] < 0) | (py[1:625] >= 2 ** 32)).any()) or not 0 <= int(py[625]) <= 624:
        return "holds a python generator state out of range"
    if not bool(torch.isfinite(state["numpy_gauss"]).all()):
        return "holds a non-finite numpy gauss value"
    cuda = state.get("cuda")
    if cuda is not None and (not isinstance(cuda, torch.Tensor) or cuda.dtype != torch.uint8):
        return "has a 'cuda' state that is not uint8"
    return ""


def copy_checkpoint(src: str | Path, dst: str | Path) -> Path:
    """Atomic byte copy (same guarantees as save_checkpoint): used to rebuild best.pth from epoch_N.pth."""
    def copy(f) -> None:
        with open(src, "rb") as s:
            shutil.copyfileobj(s, f, 1 << 20)
    return _write_atomically(Path(dst), copy)


TMP_GLOB = ".*.pth.*.tmp"  # the temporary files of `_write_atomically`


def remove_stale_temps(folder: Path) -> list[Path]:
    """Temporary files a killed save left in `folder` (only one run writes a work dir: its claim), removed."""
    removed = []
    for tmp in Path(folder).glob(TMP_GLOB):
        try:
            tmp.unlink()
            removed.append(tmp)
        except OSError:
            pass
    return removed


def _write_atomically(path: Path, write) -> Path:
    """`write(file)` into a temporary file beside `path`, flushed to disk, then renamed over `path`; on any
    failure the temporary file is removed and `path` is untouched. A file system error (disk full, read-only,
    no permission) is one CheckpointError naming the folder and the fix; temporaries of a killed save are
    removed first."""
    remove_stale_temps(path.parent)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        f = os.fdopen(fd, "wb")
        try:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        finally:
            try:
                f.close()
            except OSError:  # a full disk fails the close's flush again: the first error is the one to report
                pass
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        os_exc = _os_error_in(exc)
        if os_exc is not None or (isinstance(exc, RuntimeError) and "file write failed" in str(exc)):
            # torch's zip writer fails again in its __exit__ after the OSError: one message, for the first error
            raise CheckpointError(_write_failure(path, os_exc or exc)) from (os_exc or exc)
        raise
    return path


def _os_error_in(exc: BaseException) -> OSError | None:
    """The OSError an exception is, or was raised from / while handling (torch wraps write errors)."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, OSError):
            return exc
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


def _write_failure(path: Path, exc: BaseException) -> str:
    import errno as _errno

    os_exc = exc if isinstance(exc, OSError) else None
    code = getattr(os_exc, "errno", None)
    try:
        free = f"{shutil.disk_usage(path.parent).free / 1e9:.2f} GB free"
    except OSError:
        free = "free space unknown"
    if code in (_errno.ENOSPC, _errno.EDQUOT):
        fix = f"the disk is full ({free}): free space there (old epoch_N.pth files can go) and --resume"
    elif code in (_errno.EROFS, _errno.EACCES, _errno.EPERM):
        fix = "the folder is not writable: choose a --work-dir you can write, or fix its permissions, and --resume"
    else:
        fix = f"check the disk ({free}) and --resume"
    why = os_exc.strerror if os_exc is not None and os_exc.strerror else str(exc).splitlines()[0]
    return (f"cannot write checkpoint {path} ({why}); the checkpoints already on disk are kept and no partial "
            f"file was left: {fix}")


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu", mmap: bool = False,
                    verify: bool = True) -> dict:
    """A training checkpoint, read and verified by the one reader; a clear CheckpointError otherwise."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist: check the path, or list the work dir's *.pth")
    try:
        ckpt = read_checkpoint(path, map_location=map_location, mmap=mmap, verify=verify)
    except CheckpointError as exc:
        if isinstance(exc.__cause__, pickle.UnpicklingError):  # the reader's advice (--allow-pickle) is for
            # load_pretrained / `occworld-tokyo model`: train.py, --eval-only and forecast have no such flag
            raise CheckpointError(
                f"checkpoint {path} contains pickled Python objects, which torch.load(weights_only=True) refuses "
                "(unpickling can run arbitrary code); training, evaluation and forecasts read checkpoints written "
                "by train.py (only tensors and plain types): pass one of those (epoch_N.pth, latest.pth, "
                "best.pth)") from exc
        raise
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise CheckpointError(f"{path} is not a training checkpoint (no 'state_dict' key): pass a file written "
                              "by train.py (epoch_N.pth, latest.pth, best.pth)")
    if verify:
        check_training_state(ckpt, path)
    return ckpt


def checkpoint_position(path: str | Path) -> tuple[int, int]:
    """(epoch, global_iter) stored in a checkpoint file (memory-mapped: cheap for big files)."""
    ckpt = load_checkpoint(path, mmap=True, verify=False)  # position only; the file used is verified on load
    return int(ckpt.get("epoch", 0)), int(ckpt.get("global_iter", 0))


def checkpoint_dirs(work_dir: str | Path) -> list[Path]:
    """Where checkpoints of a work dir may be: the dir itself and the guide's `<work-dir>/checkpoints/`."""
    work_dir = Path(work_dir)
    return [d for d in (work_dir, work_dir / "checkpoints") if d.is_dir()]


def find_latest(work_dir: str | Path, log=print) -> Path | None:
    """The resumable checkpoint with the largest (epoch, global_iter); best.pth is not a resume point."""
    found: list[tuple[tuple[int, int, int], Path]] = []
    for d in checkpoint_dirs(work_dir):
        for p in d.glob("*.pth"):
            if p.name == "best.pth":
                continue
            try:
                epoch, it = checkpoint_position(p)
            except CheckpointError as exc:
                log(f"skipping unreadable checkpoint: {exc}")
                continue
            found.append(((epoch, it, int(p.name.startswith("epoch_"))), p))
    return max(found)[1] if found else None


def find_best(work_dir: str | Path) -> Path | None:
    for d in checkpoint_dirs(work_dir):
        if (d / "best.pth").is_file():
            return d / "best.pth"
    return None


# ------------------------------------------------------------------------------------------------ RNG states
def capture_rng() -> dict[str, torch.Tensor]:
    """All generator states of this process as tensors (readable by the weights-only loader)."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64)),
        "numpy_meta": torch.tensor([np_state[2], np_state[3]], dtype=torch.int64),
        "numpy_gauss": torch.tensor([np_state[4]], dtype=torch.float64),
        "python": torch.tensor([py_state[0], *py_state[1]], dtype=torch.int64),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.stack([s for s in torch.cuda.get_rng_state_all()])
    return state


def restore_rng(state: dict[str, torch.Tensor]) -> None:
    torch.set_rng_state(state["torch"].cpu())
    keys = state["numpy_keys"].numpy().astype(np.uint32)
    pos, has_gauss = (int(v) for v in state["numpy_meta"].tolist())
    np.random.set_state(("MT19937", keys, pos, has_gauss, float(state["numpy_gauss"][0])))
    py = [int(v) for v in state["python"].tolist()]
    random.setstate((py[0], tuple(py[1:]), None))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(state["cuda"].cpu()))


# ------------------------------------------------------------------------------------------------ stored config
def stored_config(ckpt: dict, path: str | Path) -> dict:
    """The resolved config a checkpoint carries (`config_json`), parsed and range-checked like a config file;
    a CheckpointError naming the file and the key otherwise."""
    import json

    from occworld_tokyo.config import ConfigError, validate_config

    text = ckpt.get("config_json")
    if not isinstance(text, str):
        raise CheckpointError(f"{path} carries no config (config_json): use a checkpoint written by train.py")
    try:
        cfg = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: its stored config (config_json) is not JSON ({exc}); the file is damaged "
                              "or was edited: use another checkpoint of the run") from None
    if not isinstance(cfg, dict) or not isinstance(cfg.get("model"), dict):
        raise CheckpointError(f"{path}: its stored config (config_json) has no 'model' dict; use a checkpoint "
                              "written by train.py")
    try:
        validate_config(cfg, source="config_json")
    except ConfigError as exc:
        raise CheckpointError(f"{path}: its stored config is not valid: {exc}") from None
    return cfg


def build_stored_model(ckpt: dict, path: str | Path) -> tuple[torch.nn.Module, dict]:
    """(model with the checkpoint's weights, config) from the config a checkpoint carries. The model is first
    built without memory (torch's meta device) and compared, tensor by tensor, with the stored weights: a config
    that asks for another (e.g. a huge) model is refused by name before anything is allocated."""
    from occworld_tokyo.model import build_model

    cfg = stored_config(ckpt, path)
    try:
        with torch.device("meta"):
            shell = build_model(cfg["model"])
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: its stored config's 'model' cannot be built ({type(exc).__name__}: {exc}); "
                              "use a checkpoint written by train.py") from None
    want = {k: tuple(v.shape) for k, v in shell.state_dict().items()}
    del shell
    weights = ckpt["state_dict"]
    have = {k: tuple(v.shape) for k, v in weights.items() if isinstance(v, torch.Tensor)}
    if want != have:
        other = [f"{k} {list(want[k])} vs {list(have[k])} stored" for k in want if k in have and want[k] != have[k]]
        missing, extra = sorted(set(want) - set(have)), sorted(set(have) - set(want))
        size = sum(math.prod(s) for s in want.values())
        raise CheckpointError(
            f"{path}: its stored config describes another model than its weights ({size:,} values configured vs "
            f"{sum(math.prod(s) for s in have.values()):,} stored; {len(other)} of another shape, e.g. {other[:2]}, "
            f"{len(missing)} missing, e.g. {missing[:2]}, {len(extra)} unexpected, e.g. {extra[:2]}); the config was "
            "edited or belongs to another file: use a checkpoint written by train.py")
    model = build_model(cfg["model"])
    model.load_state_dict(weights)
    return model, cfg
