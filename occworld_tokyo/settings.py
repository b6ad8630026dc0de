"""Every training setting, declared once: its type, default and allowed range (docs/training.md, "Configs").

A config file sets values; this table says which keys exist, what each may hold and what an unset one means.
`config.validate_config` refuses an unknown key (naming the closest known one) and any value outside its
declared range (naming the key, the value and the range); `config.with_defaults` fills the unset ones, so the
training code reads `cfg[...]` and never carries a default of its own. The `model` section is the model's
(config/_base_/model_tokyo.py, checked by the model builder); its guide keys are declared here, and its sizes in
MODEL_SIZES (range-checked when set, never defaulted). Ranges that depend on another setting (free_index <
num_classes, future_frames >= 1 for the world model, ...) are `config.check_relations`.

Units: lengths in metres, rates per iteration, `lr` per step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Setting:
    key: str                      # dotted: 'data.samples_per_gpu'
    kind: str                     # int | float | bool | str | choice | range6 | voxel3 | pair | floats | ints | list
                                  # | any
    default: Any
    lo: float = -math.inf         # inclusive bounds for int / float
    hi: float = math.inf
    open_lo: bool = False         # lo itself not allowed
    open_hi: bool = False
    choices: tuple = ()
    optional: bool = False        # None allowed
    doc: str = ""
    length: int = 0               # ints: exactly this many (0: any number, at least one)

    def check(self, value: Any) -> str | None:
        """None when the value is allowed, else what is wrong with it."""
        if value is None:
            return None if self.optional else "must be set (None is not allowed)"
        kind = self.kind
        if kind == "choice":
            return None if value in self.choices else f"must be one of {list(self.choices)}"
        if kind == "bool":
            return None if isinstance(value, bool) else "must be True or False"
        if kind == "str":
            return None if isinstance(value, str) and value else "must be a non-empty string"
        if kind == "list":
            return None if isinstance(value, (list, tuple)) else "must be a list"
        if kind == "any":
            return None
        if kind == "range6":
            ok = _numbers(value, 6) and all(value[i] < value[i + 3] for i in range(3))
            return None if ok else "must be [x_min, y_min, z_min, x_max, y_max, z_max] with each min < max (m)"
        if kind == "voxel3":
            return None if _numbers(value, 3) and min(value) > 0 else "must be 3 numbers > 0 (m)"
        if kind == "pair":
            ok = _numbers(value, 2) and all(self.lo <= v < self.hi for v in value)
            return None if ok else f"must be 2 numbers in [{self.lo:g}, {self.hi:g})"
        if kind == "floats":
            ok = isinstance(value, (list, tuple)) and _numbers(value, len(value)) and len(value) > 0 \
                and len(set(value)) == len(value) and all(self._in_range(float(v)) for v in value)
            return None if ok else f"must be a non-empty list of different numbers in {self._range_text()}"
        if kind == "ints":
            ok = isinstance(value, (list, tuple)) and len(value) > 0 \
                and (not self.length or len(value) == self.length) \
                and all(isinstance(v, int) and not isinstance(v, bool) and self._in_range(float(v)) for v in value)
            count = f"{self.length} whole numbers" if self.length else "a non-empty list of whole numbers"
            return None if ok else f"must be {count} in {self._range_text()}"
        if kind == "int" and (not isinstance(value, int) or isinstance(value, bool)):
            return "must be an integer"
        if kind == "float" and (not isinstance(value, (int, float)) or isinstance(value, bool)):
            return "must be a number"
        return None if self._in_range(float(value)) else f"must be in {self._range_text()}"

    def _in_range(self, v: float) -> bool:
        low_ok = v > self.lo if self.open_lo else v >= self.lo
        high_ok = v < self.hi if self.open_hi else v <= self.hi
        return math.isfinite(v) and low_ok and high_ok

    def _range_text(self) -> str:
        return f"{'(' if self.open_lo else '['}{self.lo:g}, {self.hi:g}{')' if self.open_hi else ']'}"


def _numbers(value: Any, n: int) -> bool:
    return (isinstance(value, (list, tuple)) and len(value) == n
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value))


S = Setting
SETTINGS: tuple[Setting, ...] = (
    # data (the guide's names)
    S("data_root", "str", "data/tokyo_gazebo/", doc="folder of sessions"),
    S("point_cloud_range", "range6", [-40.0, -40.0, -2.0, 40.0, 40.0, 150.0], doc="box of the stored grid used (m)"),
    S("voxel_size", "voxel3", [0.4, 0.4, 1.25], doc="voxel of the selected grid (m)"),
    S("history_frames", "int", 4, lo=1, hi=100, doc="past frames per window (declared once; the model gets it)"),
    S("future_frames", "int", 6, lo=0, hi=100, doc="future frames per window (declared once; the model gets it)"),
    S("num_classes", "int", 14, lo=2, hi=256, doc="labels incl. free (declared once; the tokenizer gets it)"),
    S("free_index", "int", 0, lo=0, hi=255, doc="label id of free space (declared once; the tokenizer gets it)"),
    S("data.samples_per_gpu", "int", 1, lo=1, hi=4096, doc="batch per process"),
    S("data.workers_per_gpu", "int", 4, lo=0, hi=64, doc="DataLoader worker processes per process"),
    S("data.val_fraction", "float", 0.2, lo=0.0, hi=1.0, open_lo=True, open_hi=True,
      doc="share of sessions held out for validation"),
    S("data.split_seed", "int", 0, lo=0, doc="seed of the session split"),
    S("data.window_stride", "int", 1, lo=1, hi=10_000, doc="frames between train window starts"),
    S("data.val_window_stride", "int", 1, lo=1, hi=10_000, doc="frames between val window starts"),
    S("data.time_split_gap", "int", None, lo=0, hi=100_000, optional=True,
      doc="single-session data: frames between train and val (None: one window)"),
    S("data.pin_memory", "bool", None, optional=True, doc="None: on CUDA only"),
    S("data.val_root", "str", None, optional=True,
      doc="folder of sessions validated on whole; data_root then trains whole (None: split data_root by session)"),
    S("data.agent_types", "list", None, optional=True, doc="train on these agent types only (None: all)"),
    S("data.prefetch_factor", "int", 2, lo=1, hi=64, doc="batches each worker loads ahead"),
    # model: the guide's keys; the rest of the section is the model builder's
    S("model.type", "choice", "TransVQVAE", choices=("TransVQVAE", "VAERes2D")),
    S("model.freeze_vae", "bool", True),
    S("model.freeze_transformer", "bool", False),
    S("model.freeze_pose", "bool", False),
    # optimisation
    S("optimizer.type", "choice", "AdamW", choices=("AdamW",)),
    S("optimizer.lr", "float", 1e-4, lo=0.0, hi=10.0, open_lo=True),
    S("optimizer.weight_decay", "float", 0.01, lo=0.0, hi=10.0),
    S("optimizer.betas", "pair", (0.9, 0.999), lo=0.0, hi=1.0),
    S("optimizer.eps", "float", 1e-8, lo=0.0, hi=1.0, open_lo=True),
    S("lr_config.policy", "choice", "CosineAnnealing", choices=("CosineAnnealing",)),
    S("lr_config.min_lr", "float", 0.0, lo=0.0, hi=10.0),
    S("lr_config.warmup", "choice", "linear", choices=("linear", None), optional=True),
    S("lr_config.warmup_iters", "int", 0, lo=0, doc="iterations of linear warmup"),
    S("lr_config.warmup_ratio", "float", 0.0, lo=0.0, hi=1.0, doc="warmup starts at this share of lr"),
    S("grad_clip.max_norm", "float", 35.0, lo=0.0, open_lo=True, optional=True,
      doc="clip the gradient norm to this (None: no clipping)"),
    S("grad_clip.norm_type", "float", 2.0, lo=0.0, hi=100.0, open_lo=True, doc="p of the p-norm"),
    S("max_epochs", "int", 50, lo=1, hi=1_000_000),
    S("fp16.enabled", "bool", False, doc="CUDA only: fp16 autocast + GradScaler"),
    S("fp16.init_scale", "float", 65536.0, lo=1.0, hi=2.0 ** 32),
    S("fp16.max_consecutive_skips", "int", 50, lo=1, hi=1_000_000),
    S("cpu_precision", "choice", "fp32", choices=("fp32", "bf16")),
    S("compile.enabled", "bool", False, doc="torch.compile the training step (same computation; the first steps "
                                           "compile, minutes at the full size)"),
    S("compile.backend", "str", "inductor", doc="'inductor' fuses kernels (C++ compiler on CPU, Triton on CUDA); "
                                                "'eager' / 'aot_eager' only trace"),
    S("compile.mode", "choice", None, optional=True,
      choices=(None, "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")),
    # evaluation, checkpoints, logging
    S("evaluation.interval", "int", 1, lo=1, hi=1_000_000, doc="validate + epoch_N.pth every N epochs"),
    S("evaluation.max_samples", "int", None, lo=1, optional=True, doc="cap of validation windows (None: all)"),
    S("evaluation.vpq_iou_thresholds", "floats", [0.5, 0.2], lo=0.0, hi=1.0, open_lo=True, open_hi=True,
      doc="VPQ matching IoU thresholds, each scored (0.5 FIERY, 0.2 Cam4DOcc); the first is the headline"),
    S("evaluation.visibility", "choice", "camera", choices=(None, "camera", "lidar"), optional=True,
      doc="mask_<visibility> of the data: metrics also over the voxels it marks visible (None: all voxels only)"),
    S("evaluation.agent_box", "voxel3", None, optional=True,
      doc="ego box for collisions: length, width, height (m; None: metrics default)"),
    # hand-made methods scored beside the model (evaluation/hand_made.py), never part of the model's own row
    S("evaluation.voxel_copy", "float", None, lo=0.0, optional=True,
      doc="method world_model_plan+voxel_copy: logit for the ego-warped last frame's class where it reaches"),
    S("evaluation.fill_copy", "float", None, lo=0.0, optional=True,
      doc="with voxel_copy: logit for the last frame's class at the same ego-grid place where the warp does not reach"),
    S("evaluation.unseen_class_logit", "float", None, lo=0.0, optional=True,
      doc="hand-made methods: logit taken from every class no history voxel shows (world_model+unseen_prior too)"),
    S("checkpoint_config.interval_iters", "int", 0, lo=0, doc="> 0: latest.pth every N iterations"),
    S("log_config.interval", "int", 10, lo=1, hi=1_000_000, doc="log line every N iterations"),
    # run
    S("work_dir", "str", "checkpoints"),
    S("seed", "int", 42, lo=0, hi=2 ** 32 - 1),
    S("deterministic", "bool", True),
    S("load_from", "str", "pretrained/occworld/latest.pth", optional=True),
    S("tokenizer_checkpoint", "str", None, optional=True, doc="None: <work-dir>/tokenizer/best.pth"),
)

# The sizes of the model section (config/_base_/model_tokyo.py): checked when a config sets them, never filled in
# (the model builder's own defaults stand). A size of 0 builds a model that fails at its first step.
MODEL_SIZES: tuple[Setting, ...] = (
    S("model.vae.grid_size", "ints", None, lo=1, hi=10_000, length=3, doc="voxels X, Y, Z of the tokenizer"),
    S("model.vae.expansion", "int", None, lo=1, hi=1024, doc="class embedding width"),
    S("model.vae.ch", "int", None, lo=1, hi=65_536, doc="base channels"),
    S("model.vae.ch_mult", "ints", None, lo=1, hi=1024, doc="channel multiplier per level"),
    S("model.vae.num_res_blocks", "int", None, lo=0, hi=100),
    S("model.vae.attn_resolutions", "list", None),
    S("model.vae.dropout", "float", None, lo=0.0, hi=1.0, open_hi=True),
    S("model.vae.z_channels", "int", None, lo=1, hi=65_536),
    S("model.vae.n_e", "int", None, lo=1, hi=10_000_000, doc="codebook size"),
    S("model.vae.e_dim", "int", None, lo=1, hi=65_536, doc="codebook vector width"),
    S("model.vae.beta", "float", None, lo=0.0, hi=1000.0, doc="commitment weight"),
    S("model.transformer.num_layers", "int", None, lo=1, hi=100),
    S("model.transformer.temporal_attn_layers", "int", None, lo=0, hi=1000),
    S("model.transformer.pose_attn_layers", "int", None, lo=0, hi=1000),
    S("model.transformer.embed_dim", "int", None, lo=1, hi=65_536, doc="must equal model.vae.e_dim"),
    S("model.transformer.num_heads", "int", None, lo=1, hi=1024, doc="must divide model.transformer.embed_dim"),
    S("model.transformer.num_frames", "int", None, lo=2, hi=10_000,
      doc="temporal embeddings = input frames + 1 (default history_frames + future_frames)"),
    S("model.transformer.mlp_ratio", "float", None, lo=0.0, hi=1000.0, open_lo=True),
    S("model.transformer.dropout", "float", None, lo=0.0, hi=1.0, open_hi=True),
    S("model.pose_encoder.in_channels", "int", None, lo=1, hi=65_536, doc="13 for pose_mode 'state'"),
    S("model.pose_encoder.hidden_channels", "int", None, lo=1, hi=65_536),
    S("model.pose_encoder.out_channels", "int", None, lo=1, hi=65_536),
    S("model.pose_encoder.num_layers", "int", None, lo=1, hi=100),
    S("model.pose_decoder.hidden_channels", "int", None, lo=1, hi=65_536),
    S("model.pose_decoder.out_channels", "int", None, lo=1, hi=65_536, doc="13 for pose_mode 'state'"),
    S("model.pose_decoder.num_layers", "int", None, lo=1, hi=100),
    S("model.pose_decoder.num_modes", "int", None, lo=1, hi=1000),
)
del S

SECTIONS = ("data", "model", "optimizer", "lr_config", "grad_clip", "fp16", "compile", "evaluation",
            "checkpoint_config", "log_config")


def setting(key: str) -> Setting:
    for s in SETTINGS:
        if s.key == key:
            return s
    raise KeyError(key)
