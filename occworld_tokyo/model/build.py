"""`build_model(cfg['model'])`: the one way to construct the tokenizer or the world model from a config dict.

Config layout (config/_base_/model_tokyo.py holds the Tokyo values, config/occworld_nuscenes.py the released):

    model = dict(
        type='TransVQVAE',            # or 'VAERes2D' (tokenizer stage: uses the `vae` sub-dict)
        history_frames=4, future_frames=6, pose_mode='state', pose_loss_weight=0.1,
        freeze_vae=True, freeze_transformer=False, freeze_pose=False,
        vae=dict(grid_size=(200, 200, 121), num_classes=14, free_index=0, expansion=8, ch=64, ch_mult=(1, 2, 4),
                 num_res_blocks=2, attn_resolutions=(50,), z_channels=64, n_e=512, e_dim=64, beta=0.25, legacy=False, ...),
        transformer=dict(num_layers=2, temporal_attn_layers=6, pose_attn_layers=2, embed_dim=64, num_heads=8,
                         dropout=0.1, num_frames=10),   # num_frames: temporal embeddings = input frames + 1
        pose_encoder=dict(in_channels=13, hidden_channels=256, out_channels=64, num_layers=2),
        pose_decoder=dict(hidden_channels=256, out_channels=13, num_layers=2, num_modes=1),
        plan=dict(enabled=False, dropout=0.25),  # plan conditioning (model/plan.py); gets point_cloud_range
    )

Derived, not configured: the transformer's token_size (grid / 2**(len(ch_mult)-1)) and n_codes (= vae.n_e),
the pose decoder's in_channels (= transformer.embed_dim).
"""

from __future__ import annotations

import copy
from typing import Any

import torch.nn as nn

from .gate import VoxelGate
from .plan import PlanConditioning
from .pose import PoseDecoder, PoseEncoder
from .transformer import PlanUAutoRegTransformer
from .vae import VAERes2D
from .world_model import TransVQVAE

_WORLD_KEYS = {"type", "history_frames", "future_frames", "pose_mode", "pose_loss_weight", "freeze_vae",
               "freeze_transformer", "freeze_pose", "vae", "transformer", "pose_encoder", "pose_decoder", "plan"}


def _strip_type(cfg: dict[str, Any]) -> dict[str, Any]:
    cfg = dict(cfg)
    cfg.pop("type", None)
    return cfg


def build_vae(vae_cfg: dict[str, Any]) -> VAERes2D:
    return VAERes2D(**_strip_type(vae_cfg))


def build_model(model_cfg: dict[str, Any]) -> nn.Module:
    """model_cfg = cfg['model']. type 'TransVQVAE' -> TransVQVAE; type 'VAERes2D' -> VAERes2D built from
    model_cfg['vae'] when present (so a tokenizer config can inherit the world-model base and set only the type),
    else from the remaining keys of model_cfg itself."""
    cfg = copy.deepcopy(dict(model_cfg))
    kind = cfg.get("type", "TransVQVAE")
    if kind == "VAERes2D":
        return build_vae(cfg["vae"] if "vae" in cfg else cfg)
    if kind != "TransVQVAE":
        raise ValueError(f"unknown model type {kind!r} (expected 'TransVQVAE' or 'VAERes2D')")
    if "unseen_class_logit" in cfg:
        raise ValueError("model.unseen_class_logit is not part of the model any more: it is a hand-made step of the "
                         "evaluation; move it to evaluation.unseen_class_logit (docs/metrics.md, "
                         "'Hand-made methods')")
    unknown = set(cfg) - _WORLD_KEYS
    if unknown:
        raise ValueError(f"model config: unknown keys {sorted(unknown)}; known: {sorted(_WORLD_KEYS)}")
    for key in ("vae", "transformer", "pose_encoder", "pose_decoder", "history_frames", "future_frames"):
        if key not in cfg:
            raise ValueError(f"model config for TransVQVAE needs {key!r}")
    vae = build_vae(cfg["vae"])
    t_cfg = _strip_type(cfg["transformer"])
    t_cfg.setdefault("token_size", vae.token_size)
    t_cfg.setdefault("n_codes", vae.n_e)
    t_cfg.setdefault("num_frames", cfg["history_frames"] + cfg["future_frames"])
    transformer = PlanUAutoRegTransformer(**t_cfg)
    pose_encoder = PoseEncoder(**_strip_type(cfg["pose_encoder"]))
    d_cfg = _strip_type(cfg["pose_decoder"])
    d_cfg.setdefault("in_channels", transformer.embed_dim)
    pose_decoder = PoseDecoder(**d_cfg)
    plan = build_plan(cfg.get("plan"), transformer.embed_dim, vae.num_classes)
    return TransVQVAE(vae, transformer, pose_encoder, pose_decoder,
                      history_frames=cfg["history_frames"], future_frames=cfg["future_frames"],
                      pose_mode=cfg.get("pose_mode", "state"), pose_loss_weight=cfg.get("pose_loss_weight", 0.1),
                      freeze_vae=cfg.get("freeze_vae", True), freeze_transformer=cfg.get("freeze_transformer", False),
                      freeze_pose=cfg.get("freeze_pose", False), plan=plan)


def build_plan(plan_cfg: dict[str, Any] | None, embed_dim: int, num_classes: int = 14) -> PlanConditioning | None:
    """model.plan -> PlanConditioning, or None when absent or enabled=False (OccWorld); `plan.gate` (a dict, None:
    off) -> its VoxelGate over num_classes."""
    if not plan_cfg:
        return None
    plan_cfg = dict(plan_cfg)
    if not plan_cfg.pop("enabled", False):
        return None
    if "point_cloud_range" not in plan_cfg:
        raise ValueError("model.plan needs point_cloud_range (the token map's extent in metres; a config's top-level "
                         "point_cloud_range is copied there)")
    gate = plan_cfg.pop("gate", None)
    plan = PlanConditioning(embed_dim, **plan_cfg)
    if gate:
        plan.gate = VoxelGate(num_classes, **gate)
    return plan


def tiny_model_config(grid_size: tuple[int, int, int] = (32, 32, 8), num_classes: int = 14, free_index: int = 0,
                      history_frames: int = 2, future_frames: int = 2, pose_mode: str = "state",
                      **overrides: Any) -> dict[str, Any]:
    """A small model config of the Tokyo form (2-level tokenizer U-Net, 2-level transformer, 1 layer each) for
    tests and smoke runs: builds in milliseconds and runs a step in well under a second on CPU.
    `overrides` are merged over the top level (e.g. freeze_vae=False)."""
    pose_dim = 13 if pose_mode == "state" else 5
    cfg: dict[str, Any] = dict(
        type="TransVQVAE", history_frames=history_frames, future_frames=future_frames, pose_mode=pose_mode,
        pose_loss_weight=0.1, freeze_vae=True, freeze_transformer=False, freeze_pose=False,
        vae=dict(grid_size=tuple(grid_size), num_classes=num_classes, free_index=free_index, expansion=4, ch=32,
                 ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(grid_size[0] // 2,), z_channels=16, n_e=64,
                 e_dim=16, beta=0.25, legacy=False),
        transformer=dict(num_layers=2, temporal_attn_layers=1, pose_attn_layers=1, embed_dim=16, num_heads=2,
                         mlp_ratio=2, dropout=0.1, num_frames=history_frames + future_frames),
        pose_encoder=dict(in_channels=pose_dim, hidden_channels=32, out_channels=16, num_layers=2),
        pose_decoder=dict(hidden_channels=32, out_channels=2 if pose_mode == "nuscenes" else pose_dim,
                          num_layers=2, num_modes=3 if pose_mode == "nuscenes" else 1),
    )
    cfg.update(overrides)
    return cfg


_RELEASE_TRANSFORMER_DEFAULTS = {"learnable_queries": True, "conditional": True, "tokens_untouched": False,
                                 "add_aggregate": False, "without_multiscale": False, "without_spatial_attn": False,
                                 "without_pose_spatial_attn": False, "without_pose_temporal_attn": False,
                                 "without_temporal_attn": False, "ffn_dims": None}
_SUPPORTED_TRANSFORMER = {"learnable_queries": False, "conditional": True}


def model_config_from_release(release: dict[str, Any], history_frames: int, future_frames: int) -> dict[str, Any]:
    """Translate the released OccWorld's `model` config dict (as given to its `MODELS.build`, e.g. the `model` of
    config/train_occworld.py or config/train_vqvae.py) into this project's model config (build_model's input).

    history_frames / future_frames: the rollout split (the release's autoregressive (start, mid, end) =
    (0, history, history + future)). A bare tokenizer config (type 'VAERes2D') ignores them. Variants the
    release can build but this model does not compute (learnable queries, the ablation `without_*` switches,
    `tokens_untouched`, `add_aggregate`, `delta_input`, `give_hiddens`) raise ValueError naming the key."""
    def vae_cfg(v: dict[str, Any]) -> dict[str, Any]:
        enc, dec, vq = v["encoder_cfg"], v["decoder_cfg"], v["vqvae_cfg"]
        expansion = int(v.get("expansion", 8))
        if enc.get("double_z", True):
            raise ValueError("release vae.encoder_cfg.double_z=True (a KL-VAE) is not supported: set double_z=False")
        if enc["in_channels"] % expansion or dec["out_ch"] != enc["in_channels"]:
            raise ValueError(f"release vae: in_channels {enc['in_channels']} / decoder out_ch {dec['out_ch']} must "
                             f"both be Z * expansion ({expansion})")
        if vq.get("remap") is not None or vq.get("use_voxel", True):
            raise ValueError("release vae.vqvae_cfg: remap and use_voxel=True are not supported")
        z_dim = enc["in_channels"] // expansion
        return dict(grid_size=(enc["resolution"], enc["resolution"], z_dim), num_classes=v.get("num_classes", 18),
                    free_index=v.get("num_classes", 18) - 1, expansion=expansion, ch=enc["ch"],
                    ch_mult=tuple(enc["ch_mult"]), num_res_blocks=enc["num_res_blocks"],
                    attn_resolutions=tuple(enc["attn_resolutions"]), dropout=enc.get("dropout", 0.0),
                    z_channels=enc["z_channels"], n_e=vq["n_e"], e_dim=vq["e_dim"], beta=vq["beta"],
                    legacy=vq.get("legacy", True))

    release = copy.deepcopy(dict(release))
    kind = release.get("type", "TransVQVAE")
    if kind == "VAERes2D":
        return {"type": "VAERes2D", "vae": vae_cfg(release)}
    if kind != "TransVQVAE":
        raise ValueError(f"release model type {kind!r}: expected 'TransVQVAE' or 'VAERes2D'")
    for key, ok in (("delta_input", False), ("give_hiddens", False), ("without_all", False)):
        if release.get(key, ok) != ok:
            raise ValueError(f"release model.{key}={release[key]!r} is not supported (only {ok!r})")
    t = release["transformer"]
    for key, default in _RELEASE_TRANSFORMER_DEFAULTS.items():
        value = t.get(key, default)
        if value != _SUPPORTED_TRANSFORMER.get(key, default):
            raise ValueError(f"release transformer.{key}={value!r} is not supported "
                             f"(only {_SUPPORTED_TRANSFORMER.get(key, default)!r})")
    C = t["img_shape"][0]
    channels = list(t["channels"])
    levels = len(channels) - 1
    if channels != [C * 2 ** i for i in range(levels + 1)] or t["tpe_dim"] != C:
        raise ValueError(f"release transformer.channels {channels} / tpe_dim {t['tpe_dim']}: this model needs "
                         f"channels = img_shape[0] * (1, 2, 4, ...) and tpe_dim = img_shape[0] ({C})")
    offset = int(release.get("offset", 1))
    if offset != 1 or t.get("num_tokens", 1) != 1:
        raise ValueError("release model.offset and transformer.num_tokens must be 1")
    pe, pd = release["pose_encoder"], release["pose_decoder"]
    vae = vae_cfg(release["vae"])
    return dict(
        type="TransVQVAE", history_frames=int(history_frames), future_frames=int(future_frames),
        pose_mode="nuscenes", pose_loss_weight=0.1, freeze_vae=True, freeze_transformer=False, freeze_pose=False,
        vae=vae,
        transformer=dict(num_layers=levels, temporal_attn_layers=t.get("temporal_attn_layers", 1),
                         pose_attn_layers=t.get("pose_attn_layers", 1), embed_dim=C,
                         num_heads=t.get("num_heads", 8), mlp_ratio=4, dropout=0.0,
                         num_frames=int(t["num_frames"]) + offset),
        pose_encoder=dict(in_channels=pe["in_channels"], hidden_channels=pe["out_channels"],
                          out_channels=pe["out_channels"], num_layers=pe.get("num_layers", 2)),
        pose_decoder=dict(hidden_channels=pd["in_channels"], out_channels=2, num_layers=pd.get("num_layers", 2),
                          num_modes=pd.get("num_modes", 3)),
    )
