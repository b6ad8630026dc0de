"""Python config files in the guide's style (`config/finetune_tokyo.py`): module-level names are settings.

A config file is a Python program: loading it RUNS its code with your permissions (like any script). Load only
files you trust; an exception inside one is reported as a ConfigError naming the file and line.

A file may inherit: `_base_ = ['./_base_/model_tokyo.py']` (paths relative to the file). Dicts merge key by key,
the child wins; any other value replaces. `merge_options(cfg, ['optimizer.lr=5e-5', ...])` applies
command-line overrides (`--cfg-options`), refusing keys that do not exist.
"""

from __future__ import annotations

import ast
import copy
import runpy
import traceback
from pathlib import Path
from typing import Any

from occworld_tokyo.errors import UserError
from occworld_tokyo.settings import MODEL_SIZES, SECTIONS, SETTINGS


class ConfigError(UserError, ValueError):
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
    """Read a Python config file (and its `_base_` files) into a plain dict (`config_path` finds packaged ones)."""
    path = (config_path(path) if not _seen else Path(path)).resolve()
    if not path.is_file():
        raise ConfigError(f"config file not found: {path} (pass --config with an existing file, e.g. "
                          f"config/finetune_tokyo.py; the packaged configs are {sorted(p.name for p in CONFIG_DIR.glob('*.py'))})")
    if path in _seen:
        raise ConfigError(f"config inheritance cycle: {' -> '.join(str(p) for p in (*_seen, path))}")
    try:
        namespace = runpy.run_path(str(path))
    except SyntaxError as exc:
        raise ConfigError(f"{path}:{exc.lineno}: syntax error in config: {exc.msg}") from exc
    except Exception as exc:  # noqa: BLE001 - the file's own code raised: name the file and line, not a traceback
        lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename) == path]
        where = f"{path}:{lines[-1]}" if lines else str(path)
        raise ConfigError(f"{where}: running the config file raised {type(exc).__name__}: {exc}; fix that line "
                          "(config files are Python code)") from exc
    own = {k: v for k, v in namespace.items() if not k.startswith("__") and not callable(v) and not hasattr(v, "__file__")}
    bases = own.pop("_base_", [])
    if isinstance(bases, str):
        bases = [bases]
    cfg: dict[str, Any] = {}
    for base in bases:
        cfg = _merge(cfg, load_config(path.parent / base, (*_seen, path)))
    cfg = _merge(cfg, own)
    return cfg if _seen else share_declared_once(cfg, str(path))


# values declared once at the top level and handed to the model section (a model section that names them too
# must agree): frame counts for the world model, class table for the tokenizer, the grid's extent for the plan
# conditioning (model.plan, when the config has that section)
_SHARED = (("history_frames", ("history_frames",)), ("future_frames", ("future_frames",)),
           ("num_classes", ("vae", "num_classes")), ("free_index", ("vae", "free_index")),
           ("point_cloud_range", ("plan", "point_cloud_range")))


def share_declared_once(cfg: dict[str, Any], source: str = "config", overridden: set[str] = frozenset()) \
        -> dict[str, Any]:
    """Copy the top-level frame counts / class table into `model` (they are declared once, at the top level).
    Keys in `overridden` (set on the command line) replace the model's value instead of having to agree."""
    model = cfg.get("model")
    if not isinstance(model, dict):
        return cfg
    for top, inner in _SHARED:
        if top not in cfg:
            continue
        node = model
        for key in inner[:-1]:
            node = node.get(key) if isinstance(node.get(key), dict) else None
            if node is None:
                break
        if node is None or (inner[0] != "vae" and model.get("type") == "VAERes2D"):
            continue
        if inner[-1] in node and node[inner[-1]] != cfg[top] and top not in overridden:
            raise ConfigError(f"{source}: {top} = {cfg[top]!r} but model.{'.'.join(inner)} = {node[inner[-1]]!r}: "
                              f"declare {top} once, at the top level (the model takes it from there)")
        node[inner[-1]] = cfg[top]
    return cfg


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

# The config files ship inside the package (occworld_tokyo/configs/; the repository's config/ is a link to it), so
# an installed package finds them from any folder: `--config config/finetune_tokyo.py` (the guide's path) means
# the file there when it exists relative to the working folder, else the packaged one.
CONFIG_DIR = Path(__file__).resolve().parent / "configs"
MODEL_BASE_FILE = CONFIG_DIR / "_base_" / "model_tokyo.py"


def config_path(path: str | Path) -> Path:
    """The config file `path` names: as given when it exists, else the packaged file of that name
    (`config/tiny_vqvae.py`, `tiny_vqvae.py` or `tiny_vqvae` -> occworld_tokyo/configs/tiny_vqvae.py)."""
    given = Path(path)
    if given.is_file() or given.is_absolute():
        return given
    parts = given.parts[1:] if given.parts and given.parts[0] in ("config", "configs") else given.parts
    packaged = CONFIG_DIR.joinpath(*parts) if parts else CONFIG_DIR
    if packaged.suffix != ".py":
        packaged = packaged.with_suffix(".py")
    return packaged if packaged.is_file() else given


def _known_keys() -> dict[str, set[str] | None]:
    known: dict[str, set[str] | None] = {}
    for s in SETTINGS:
        top, _, sub = s.key.partition(".")
        known.setdefault(top, set())
        if sub:
            known[top].add(sub)
    return known


KNOWN_KEYS: dict[str, set[str] | None] = _known_keys()  # top-level key -> its sub-keys (settings.SETTINGS)


def _model_base_keys(base_file: Path = MODEL_BASE_FILE) -> set[str]:
    """Top-level keys of `model` in the model engineer's base file (empty when the file is absent)."""
    if not base_file.is_file():
        return set()
    model = load_config(base_file).get("model", {})
    return set(model) if isinstance(model, dict) else set()


# keys that left the model for the evaluation (hand-made steps are named methods, not the model's output)
MOVED_KEYS = {"model.unseen_class_logit": "evaluation.unseen_class_logit",
              "model.plan.voxel_copy": "evaluation.voxel_copy", "model.plan.fill_copy": "evaluation.fill_copy"}


def validate_config(cfg: dict[str, Any], source: str = "config") -> dict[str, Any]:
    """Refuse unknown or misspelled keys and impossible values, naming the key; returns cfg unchanged."""
    for old, new in MOVED_KEYS.items():
        if get_dotted(cfg, old, default=_MISSING) is not _MISSING:
            raise ConfigError(f"{source}: {old} is a hand-made step of the evaluation now, not part of the model: "
                              f"set {new} instead (docs/metrics.md, 'Hand-made methods')")
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
    for st in (*SETTINGS, *MODEL_SIZES):
        value = get_dotted(cfg, st.key, default=_MISSING)
        if value is _MISSING:
            continue
        problem = st.check(value)
        if problem:
            raise ConfigError(f"{source}: {st.key} = {value!r} {problem}" + (f" ({st.doc})" if st.doc else ""))
    check_relations(cfg, source)
    return cfg


def check_relations(cfg: dict[str, Any], source: str = "config") -> None:
    """Settings whose allowed range depends on another setting (each value alone is in its own range: see
    validate_config). Unset values count at their defaults. A ConfigError names both keys and the fix."""
    from occworld_tokyo import labels

    full = with_defaults(cfg)

    def refuse(text: str) -> None:
        raise ConfigError(f"{source}: {text}")

    num_classes, free_index = full["num_classes"], full["free_index"]
    if free_index >= num_classes:
        refuse(f"free_index = {free_index} must be below num_classes = {num_classes} (label ids are "
               f"0..num_classes-1; the Tokyo label table has free = {labels.FREE})")
    if num_classes < labels.NUM_CLASSES:
        refuse(f"num_classes = {num_classes} is smaller than the data's label table ({labels.NUM_CLASSES} labels, "
               f"occworld_tokyo/labels.py): set num_classes = {labels.NUM_CLASSES}")
    model = full["model"]
    if model.get("type") == "TransVQVAE":
        if full["future_frames"] < 1:
            refuse(f"future_frames = {full['future_frames']} must be >= 1 for the world model (model.type "
                   "'TransVQVAE' forecasts the future frames; only the tokenizer, model.type 'VAERes2D', uses 0)")
        vae, tr = model.get("vae"), model.get("transformer")
        if isinstance(vae, dict) and isinstance(tr, dict):
            embed, e_dim, heads = tr.get("embed_dim"), vae.get("e_dim"), tr.get("num_heads")
            if embed is not None and e_dim is not None and embed != e_dim:
                refuse(f"model.transformer.embed_dim = {embed} must equal model.vae.e_dim = {e_dim} (the "
                       "transformer reads the quantized latents)")
            if embed is not None and heads is not None and embed % heads:
                refuse(f"model.transformer.num_heads = {heads} must divide model.transformer.embed_dim = {embed}")
            frames, window = tr.get("num_frames"), full["history_frames"] + full["future_frames"]
            if frames is not None and frames < window:
                refuse(f"model.transformer.num_frames = {frames} must be at least history_frames + future_frames "
                       f"= {window} (temporal embeddings = input frames + 1); leave it unset to take that")
            pose_out = (model.get("pose_encoder") or {}).get("out_channels")
            if embed is not None and pose_out is not None and pose_out != embed:
                refuse(f"model.pose_encoder.out_channels = {pose_out} must equal model.transformer.embed_dim = "
                       f"{embed} (pose features join the scene tokens)")
        if model.get("pose_mode", "state") == "state":
            from occworld_tokyo.dataset.poses import POSE_DIM

            for key in ("pose_encoder.in_channels", "pose_decoder.out_channels"):
                value = get_dotted(model, key)
                if value is not None and value != POSE_DIM:
                    refuse(f"model.{key} = {value} must be {POSE_DIM}: pose_mode 'state' poses have {POSE_DIM} "
                           "numbers per frame (dataset/poses.py)")
    if full["lr_config"]["min_lr"] > full["optimizer"]["lr"]:
        refuse(f"lr_config.min_lr = {full['lr_config']['min_lr']!r} must not exceed optimizer.lr = "
               f"{full['optimizer']['lr']!r} (the cosine schedule falls from lr to min_lr)")
    ev = full["evaluation"]
    if ev["fill_copy"] is not None and ev["voxel_copy"] is None:
        refuse(f"evaluation.fill_copy = {ev['fill_copy']!r} needs evaluation.voxel_copy (it fills where the "
               "voxel copy's warp does not reach): set evaluation.voxel_copy too, or fill_copy = None")
    data = full["data"]
    from occworld_tokyo.sessions.layout import AGENT_TYPES

    unknown = [a for a in data["agent_types"] or [] if a not in AGENT_TYPES]
    if unknown or data["agent_types"] is not None and not data["agent_types"]:
        refuse(f"data.agent_types = {data['agent_types']!r}: each must be one of {list(AGENT_TYPES)} (or None "
               "for all)")
    if data["val_root"] is not None and Path(data["val_root"]).resolve() == Path(full["data_root"]).resolve():
        refuse(f"data.val_root = {data['val_root']!r} is data_root itself: validation would score the training "
               "sessions; name another folder, or None to split data_root by session")


def check_compile(cfg: dict[str, Any], source: str = "config") -> None:
    """With compile.enabled, compile.backend must be a backend this torch knows (a run checks it before any work;
    a stored config is not, as it may come from another installation)."""
    comp = with_defaults(cfg)["compile"]
    if comp["enabled"]:
        known = compile_backends()
        if comp["backend"] not in known:
            hint = _closest(comp["backend"], known)
            raise ConfigError(f"{source}: compile.backend = {comp['backend']!r} is not a torch.compile backend{hint}; "
                              f"this torch knows {known} (or set compile.enabled = False)")


def compile_backends() -> list[str]:
    """The backend names torch.compile accepts here (torch._dynamo.list_backends, debug ones included)."""
    import torch._dynamo

    return sorted(torch._dynamo.list_backends(exclude_tags=()))


_MISSING = object()


def with_defaults(cfg: dict[str, Any]) -> dict[str, Any]:
    """A copy of cfg with every unset setting at its declared default (settings.SETTINGS)."""
    out = copy.deepcopy(cfg)
    for section in SECTIONS:
        out.setdefault(section, {})
    for st in SETTINGS:
        if get_dotted(out, st.key, default=_MISSING) is _MISSING:
            node = out
            *parents, last = st.key.split(".")
            for key in parents:
                node = node[key]
            node[last] = copy.deepcopy(st.default)
    return out


def get_dotted(cfg: dict[str, Any], dotted: str, default: Any = None) -> Any:
    """cfg['a']['b'] for 'a.b', or default when any part is missing."""
    node: Any = cfg
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            return default
        node = node[key]
    return node


def _schema_knows(keys: list[str]) -> bool:
    """Whether KNOWN_KEYS lists this (one- or two-level) setting, or settings.MODEL_SIZES this model size (or its
    section), so --cfg-options may set it when absent."""
    dotted = ".".join(keys)
    if any(s.key == dotted or s.key.startswith(dotted + ".") for s in MODEL_SIZES):
        return True
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
