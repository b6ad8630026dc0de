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
            if not isinstance(node, dict) or key not in node:
                known = sorted(node) if isinstance(node, dict) else []
                raise ConfigError(f"--cfg-options: unknown key {'.'.join(keys[: i + 1])!r}; known keys here: {known}")
            if i == len(keys) - 1:
                node[key] = _parse_value(raw.strip())
            else:
                node = node[key]
    return cfg
