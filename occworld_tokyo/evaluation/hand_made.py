"""Hand-made steps on top of the learned forecast, each scored as its own named method (never "the model").

The model's rows (`world_model`, `world_model_plan`) are its rollout as it is: argmax of the tokenizer's decoder
on the predicted codes. These methods take the same predicted codes and the same window and add fixed logits to
the decoded class logits (B, C, X, Y, Z) of each forecast frame before the argmax:

- `world_model_plan+voxel_copy` (evaluation.voxel_copy set; plan-conditioned models): + `voxel_copy` at the class
  of the last observed frame warped by the true future ego motion (the ego-warp baseline's warp,
  `baselines.ego_warp`: yaw, x/y, whole ground levels) wherever it reaches; + `fill_copy` (optional) elsewhere at
  the last frame's own class at the same ego-grid place (what `ego_warp_fill` puts there); - `unseen_class_logit`
  (optional) at every class no history voxel shows. With voxel_copy beyond every decoder logit (1000) this IS
  ego_warp_fill wherever the last frame reaches: the model decides only the cells entering the view.
- `world_model+unseen_prior` (evaluation.unseen_class_logit set): the unconditioned forecast, - unseen_class_logit
  at every class no history voxel shows.

Frames: every grid is the ego grid of its own forecast frame (X forward, Y left, Z up, label ids).
"""

from __future__ import annotations

import torch
from torch import Tensor


def unseen_penalty(occ_hist: Tensor, num_classes: int, logit: float) -> Tensor:
    """(B, H, X, Y, Z) history labels -> (B, C, 1, 1, 1) logits: -logit at every class no history voxel shows."""
    seen = torch.zeros(occ_hist.shape[0], num_classes, dtype=torch.bool, device=occ_hist.device)
    seen.scatter_(1, occ_hist.flatten(1).long(), True)
    return (~seen).float()[:, :, None, None, None] * -float(logit)


def decode_with_priors(model, codes: Tensor | None, occ_hist: Tensor, *, warped: Tensor | None = None,
                       valid: Tensor | None = None, voxel_copy: float | None = None, fill_copy: float | None = None,
                       unseen_class_logit: float | None = None, logits: Tensor | None = None) -> Tensor:
    """Predicted codes (B, n, h, w) of a world model -> labels (B, n, X, Y, Z), the decoder's class logits plus the
    module docstring's priors. `logits` (B, n, C, X, Y, Z): those decoded logits already at hand (a rollout's
    `keep_logits`), used instead of decoding `codes` again. `warped` (B, n, X, Y, Z): `ego_warp_fill` of the last
    history frame into each forecast frame (labels), `valid` (B, n, X, Y, Z) bool: where `ego_warp` reached (True)
    or the fill put the last frame's own voxel (False); both needed with voxel_copy."""
    if codes is None and logits is None:
        raise ValueError("decode_with_priors needs the predicted codes or their decoded logits")
    if voxel_copy is not None and (warped is None or valid is None):
        raise ValueError("voxel_copy needs the warped last frame and its validity mask (ego_warp_fill, ego_warp)")
    penalty = None if unseen_class_logit is None else unseen_penalty(occ_hist, model.vae.num_classes,
                                                                     unseen_class_logit)
    frames = []
    for i in range(codes.shape[1] if logits is None else logits.shape[1]):
        frame = (model.vae.decode_latents(model.vae.vqvae.lookup(codes[:, i])) if logits is None
                 else logits[:, i]).float()
        if penalty is not None:
            frame = frame + penalty.to(frame.device)
        if voxel_copy is not None:
            ok = valid[:, i].to(frame.device)
            weight = torch.where(ok, torch.full_like(ok, float(voxel_copy), dtype=frame.dtype),
                                 torch.full_like(ok, float(fill_copy or 0.0), dtype=frame.dtype))
            frame = frame.scatter_add(1, warped[:, i].to(frame.device).long()[:, None], weight[:, None])
        frames.append(frame.argmax(1))
    return torch.stack(frames, dim=1)


def method_names(eval_cfg: dict, plan_conditioned: bool) -> list[str]:
    """The hand-made methods this evaluation config asks for (module docstring)."""
    names = []
    if plan_conditioned and eval_cfg.get("voxel_copy") is not None:
        names.append("world_model_plan+voxel_copy")
    if eval_cfg.get("unseen_class_logit") is not None:
        names.append("world_model+unseen_prior")
    return names
