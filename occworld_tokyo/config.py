"""Python config files in the guide's style (`config/finetune_tokyo.py`): module-level names are settings.

A file may inherit: `_base_ = ['./_base_/model_tokyo.py']` (paths relative to the file). Dicts merge key by key,
the child wins; any other value replaces. `merge_options(cfg, ['optimizer.lr=5e-5', ...])` applies
command-line overrides (`--cfg-options`), refusing keys that do not exist.
"""

from __future__ import annotations

import ast
import copy
import runpy
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A config file or override that cannot be used; the message names the file/key and the fix."""


def _merge(base: dict, child: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in child.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and not value.get("_delete_", False):
            out[key] = _merge(out[key], value)
        else:
            value = dict(value) if isinstance(value, dict) else value
            if isinstance(value, dict):
                value.pop("_delete_", None)
            out[key] = copy.deepcopy(value)
    return out


def load_config(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Read a Python config file (and its `_base_` files) into a plain dict."""
    path = Path(path).resolve()
    if not path.is_file():
        raise ConfigError(f"config file not found: {path} (pass --config with an existing file, e.g. config/finetune_tokyo.py)")
    if path in _seen:
        raise ConfigError(f"config inheritance cycle: {' -> '.join(str(p) for p in (*_seen, path))}")
    try:
        namespace = runpy.run_path(str(path))
    except SyntaxError as exc:
        raise ConfigError(f"{path}:{exc.lineno}: syntax error in config: {exc.msg}") from exc
    own = {k: v for k, v in namespace.items() if not k.startswith("__") and not callable(v) and not hasattr(v, "__file__")}
    bases = own.pop("_base_", [])
    if isinstance(bases, str):
        bases = [bases]
    cfg: dict[str, Any] = {}
    for base in bases:
        cfg = _merge(cfg, load_config(path.parent / base, (*_seen, path)))
    return _merge(cfg, own)


def _parse_value(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # a bare word: keep as string


def merge_options(cfg: dict[str, Any], options: list[str] | None) -> dict[str, Any]:
    """Apply `key.sub=value` overrides; an unknown key is an error that names it."""
    cfg = copy.deepcopy(cfg)
    for option in options or []:
        if "=" not in option:
            raise ConfigError(f"--cfg-options entry {option!r} must look like key=value (e.g. optimizer.lr=5e-5)")
        dotted, raw = option.split("=", 1)
        keys = dotted.strip().split(".")
        node = cfg
        for i, key in enumerate(keys):
            if isinstance(node, dict) and key not in node and _schema_knows(keys[: i + 1]):
                node[key] = {} if i < len(keys) - 1 else None  # a known setting the config leaves at its default
            if not isinstance(node, dict) or key not in node:
                known = sorted(node) if isinstance(node, dict) else []
                raise ConfigError(f"--cfg-options: unknown key {'.'.join(keys[: i + 1])!r}; known keys here: {known}")
            if i == len(keys) - 1:
                node[key] = _parse_value(raw.strip())
            else:
                node = node[key]
    return cfg


# --------------------------------------------------------------------------------------------------------------
# Known keys. A setting that is not listed here is a typo or a leftover: the run refuses it by name instead of
# silently ignoring it. `None` means "any keys" (free-form dict); a set lists the allowed sub-keys.
# --------------------------------------------------------------------------------------------------------------

MODEL_BASE_FILE = Path(__file__).resolve().parents[1] / "config" / "_base_" / "model_tokyo.py"

KNOWN_KEYS: dict[str, set[str] | None] = {
    # dataset (the guide's names)
    "data_root": set(),
    "point_cloud_range": set(),
    "voxel_size": set(),
    "history_frames": set(),
    "future_frames": set(),
    # model base file (config/_base_/model_tokyo.py) top-level names
    "grid_size": set(),
    "num_classes": set(),
    "free_index": set(),
    "data": {"samples_per_gpu", "workers_per_gpu", "val_fraction", "split_seed", "window_stride",
             "val_window_stride", "time_split_gap", "pin_memory", "agent_types", "max_train_windows",
             "prefetch_factor"},
    # model: the guide's four keys plus every key that config/_base_/model_tokyo.py defines (added lazily)
    "model": {"type", "freeze_vae", "freeze_transformer", "freeze_pose"},
    # optimisation
    "optimizer": {"type", "lr", "weight_decay", "betas", "eps"},
    "lr_config": {"policy", "min_lr", "warmup", "warmup_iters", "warmup_ratio"},
    "grad_clip": {"max_norm", "norm_type"},
    "max_epochs": set(),
    "fp16": {"enabled", "init_scale", "max_consecutive_skips"},
    "cpu_precision": set(),
    "compile": {"enabled", "backend", "mode"},
    # evaluation, checkpoints, logging
    "evaluation": {"interval", "max_samples", "rollout", "vpq_iou_threshold", "n_images", "visibility", "agent_box"},
    "checkpoint_config": {"interval_iters"},
    "log_config": {"interval"},
    # run
    "work_dir": set(),
    "seed": set(),
    "deterministic": set(),
    "load_from": set(),
    "tokenizer_checkpoint": set(),
}

_VALID_VALUES: dict[str, tuple] = {
    "optimizer.type": ("AdamW",),
    "lr_config.policy": ("CosineAnnealing",),
    "lr_config.warmup": ("linear", None),
    "cpu_precision": ("fp32", "bf16"),
    "compile.enabled": (True, False),
    "compile.mode": (None, "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"),
}


def _model_base_keys(base_file: Path = MODEL_BASE_FILE) -> set[str]:
    """Top-level keys of `model` in the model engineer's base file (empty when the file is absent)."""
    if not base_file.is_file():
        return set()
    model = load_config(base_file).get("model", {})
    return set(model) if isinstance(model, dict) else set()


def validate_config(cfg: dict[str, Any], source: str = "config") -> dict[str, Any]:
    """Refuse unknown or misspelled keys and impossible values, naming the key; returns cfg unchanged."""
    for key, value in cfg.items():
        if key not in KNOWN_KEYS:
            hint = _closest(key, KNOWN_KEYS)
            raise ConfigError(f"{source}: unknown key {key!r}{hint}; known top-level keys: {sorted(KNOWN_KEYS)}")
        allowed = KNOWN_KEYS[key]
        if allowed and not isinstance(value, dict):
            raise ConfigError(f"{source}: {key!r} must be a dict(...) with keys {sorted(allowed)}, got {value!r}")
        if isinstance(value, dict) and allowed is not None:
            if key == "model":
                allowed = allowed | _model_base_keys()
            for sub in value:
                if sub not in allowed:
                    hint = _closest(sub, allowed)
                    raise ConfigError(f"{source}: unknown key '{key}.{sub}'{hint}; known keys of {key}: {sorted(allowed)}")
    for dotted, choices in _VALID_VALUES.items():
        value = get_dotted(cfg, dotted, default=_MISSING)
        if value is not _MISSING and value not in choices:
            raise ConfigError(f"{source}: {dotted} = {value!r} is not supported; use one of {list(choices)}")
    for dotted in ("history_frames", "max_epochs", "data.samples_per_gpu", "evaluation.interval"):
        value = get_dotted(cfg, dotted, default=_MISSING)
        if value is not _MISSING and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ConfigError(f"{source}: {dotted} must be an integer >= 1, got {value!r}")
    for dotted in ("future_frames", "data.workers_per_gpu", "lr_config.warmup_iters"):
        value = get_dotted(cfg, dotted, default=_MISSING)
        if value is not _MISSING and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise ConfigError(f"{source}: {dotted} must be an integer >= 0, got {value!r}")
    lr = get_dotted(cfg, "optimizer.lr", default=_MISSING)
    if lr is not _MISSING and not (isinstance(lr, (int, float)) and lr > 0):
        raise ConfigError(f"{source}: optimizer.lr must be a number > 0, got {lr!r}")
    return cfg


_MISSING = object()


def get_dotted(cfg: dict[str, Any], dotted: str, default: Any = None) -> Any:
    """cfg['a']['b'] for 'a.b', or default when any part is missing."""
    node: Any = cfg
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            return default
        node = node[key]
    return node


def _schema_knows(keys: list[str]) -> bool:
    """Whether KNOWN_KEYS lists this (one- or two-level) setting, so --cfg-options may set it when absent."""
    if len(keys) == 1:
        return keys[0] in KNOWN_KEYS
    if len(keys) == 2:
        allowed = KNOWN_KEYS.get(keys[0])
        return bool(allowed) and keys[1] in allowed
    return False


def _closest(key: str, candidates) -> str:
    import difflib

    match = difflib.get_close_matches(key, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""
