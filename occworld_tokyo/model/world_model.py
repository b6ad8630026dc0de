"""`TransVQVAE`: OccWorld's world model = scene tokenizer (`vae`) + `transformer` + `pose_encoder` + `pose_decoder`.

Training (teacher forcing): all frames are tokenized; the transformer reads frames 0..F-2 (tokens = quantized
latents before post_quant_conv, plus one ego token per frame) and predicts the codes of frames 1..F-1 and the
next poses. loss = CE over the codebook + pose_loss_weight * pose L2 (+ the VQ loss if the tokenizer trains).

Inference (`rollout`): tokenize the history, then repeatedly take the argmax codes of the last frame's prediction,
look them up in the codebook and append them; decode all predicted codes to semantic occupancy at the end.

Pose modes:
* 'state' (Tokyo, 13-d): x, y, z, quaternion xyzw, linear velocity, angular velocity relative to the current
  (= last history) frame. The decoder predicts the change to the next state (next = current + delta, quaternion
  renormalized at inference). pose_loss = mean L2 norm of the position error + mean L2 norm of the other 10 numbers.
* 'nuscenes' (released, 5-d): per-frame displacement (dx, dy) + command one-hot (3). The decoder predicts one
  next displacement per command (3 modes); the target frame's command picks the mode. pose_loss = mean L2 norm
  of the cumulative-position error over the predicted frames.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .losses import code_ce
from .pose import PoseDecoder, PoseEncoder
from .transformer import PlanUAutoRegTransformer
from .vae import VAERes2D


class TransVQVAE(nn.Module):
    """World model. Construct with build_model(cfg['model']) (see config/_base_/model_tokyo.py for the keys)."""

    def __init__(self, vae: VAERes2D, transformer: PlanUAutoRegTransformer, pose_encoder: PoseEncoder,
                 pose_decoder: PoseDecoder, history_frames: int, future_frames: int, pose_mode: str = "state",
                 pose_loss_weight: float = 0.1, freeze_vae: bool = True, freeze_transformer: bool = False,
                 freeze_pose: bool = False):
        super().__init__()
        if pose_mode not in ("state", "nuscenes"):
            raise ValueError(f"pose_mode must be 'state' or 'nuscenes', got {pose_mode!r}")
        if transformer.embed_dim != vae.e_dim:
            raise ValueError(f"transformer.embed_dim ({transformer.embed_dim}) must equal the codebook dim "
                             f"vae.e_dim ({vae.e_dim}): the transformer reads the quantized latents")
        if transformer.n_codes != vae.n_e:
            raise ValueError(f"transformer.n_codes ({transformer.n_codes}) must equal vae.n_e ({vae.n_e})")
        if pose_encoder.out_channels != transformer.embed_dim:
            raise ValueError("pose_encoder.out_channels must equal transformer.embed_dim")
        if history_frames + future_frames - 1 > transformer.num_frames:
            raise ValueError(f"history+future-1 = {history_frames + future_frames - 1} input frames exceed "
                             f"transformer.num_frames={transformer.num_frames}")
        self.vae, self.transformer = vae, transformer
        self.pose_encoder, self.pose_decoder = pose_encoder, pose_decoder
        self.history_frames, self.future_frames = int(history_frames), int(future_frames)
        self.pose_mode, self.pose_loss_weight = pose_mode, float(pose_loss_weight)
        self.pose_dim = pose_encoder.in_channels
        self.freeze_vae, self.freeze_transformer, self.freeze_pose = bool(freeze_vae), bool(freeze_transformer), \
            bool(freeze_pose)
        for module in self._frozen_modules():
            module.requires_grad_(False)
            module.eval()

    # -- freezing ------------------------------------------------------------------------------------------
    def _frozen_modules(self) -> list[nn.Module]:
        frozen: list[nn.Module] = []
        if self.freeze_vae:
            frozen.append(self.vae)
        if self.freeze_transformer:
            frozen.append(self.transformer)
        if self.freeze_pose:
            frozen += [self.pose_encoder, self.pose_decoder]
        return frozen

    def train(self, mode: bool = True) -> "TransVQVAE":
        """Like nn.Module.train, but frozen parts always stay in eval mode (no dropout, fixed statistics)."""
        super().train(mode)
        for module in self._frozen_modules():
            module.eval()
        return self

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Parameters of the non-frozen parts (what the optimizer should get)."""
        frozen = {id(p) for m in self._frozen_modules() for p in m.parameters()}
        return [p for p in self.parameters() if id(p) not in frozen and p.requires_grad]

    # -- pieces --------------------------------------------------------------------------------------------
    def _tokenize(self, occ: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """occ (B, F, X, Y, Z) -> tokens (B, F, e_dim, h, w), codes (B, F, h, w), VQ loss (0 if frozen)."""
        b, f = occ.shape[:2]
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_vae):
            z_q, vq_loss, codes = self.vae._encode(occ)
        return z_q.view(b, f, *z_q.shape[1:]), codes.view(b, f, *codes.shape[1:]), vq_loss

    def _next_pose(self, feat: Tensor, pose_in: Tensor, pose_next: Tensor | None) -> Tensor:
        """Ego features (B, T, C) at frames t -> predicted pose vectors for frames t+1 (B, T, pose_dim)."""
        out = self.pose_decoder(feat).float()  # (B, T, modes, D)
        if self.pose_mode == "state":
            return pose_in.float() + out[..., 0, :]
        # nuscenes: pick the displacement of the command of the target frame (or of the current one at inference)
        command_src = pose_next if pose_next is not None else pose_in
        mode = command_src[..., 2:5].argmax(-1)  # (B, T)
        disp = out.gather(2, mode[..., None, None].expand(*mode.shape, 1, out.shape[-1])).squeeze(2)
        command = F.one_hot(mode, 3).to(disp.dtype)
        return torch.cat([disp, command], dim=-1)

    def _pose_loss(self, pred: Tensor, target: Tensor) -> Tensor:
        target = target.float()
        if self.pose_mode == "state":
            return ((pred[..., :3] - target[..., :3]).norm(dim=-1).mean()
                    + (pred[..., 3:] - target[..., 3:]).norm(dim=-1).mean())
        return (pred[..., :2].cumsum(1) - target[..., :2].cumsum(1)).norm(dim=-1).mean()

    # -- API -----------------------------------------------------------------------------------------------
    def forward_train(self, occ: Tensor, poses: Tensor) -> dict[str, Tensor]:
        """Teacher-forced step. occ (B, F, X, Y, Z) label ids with F = history+future (any 2 <= F <= num_frames+1
        works); poses (B, F, pose_dim). Returns {'loss', 'ce_codes', 'pose_loss', 'code_acc'} (scalars; only
        'loss' carries gradient)."""
        if occ.shape[:2] != poses.shape[:2] or poses.shape[-1] != self.pose_dim:
            raise ValueError(f"occ {tuple(occ.shape)} and poses {tuple(poses.shape)} disagree "
                             f"(expected poses (B, F, {self.pose_dim}))")
        tokens, codes, vq_loss = self._tokenize(occ)
        out = self._forward_tokens(tokens, codes, poses)
        if not self.freeze_vae:
            out["loss"] = out["loss"] + self.vae.loss_weights["embed"] * vq_loss
        return out

    def forward_train_codes(self, codes: Tensor, poses: Tensor) -> dict[str, Tensor]:
        """Same step from precomputed code indices (B, F, h, w) (e.g. `vae.encode(occ)[1]` cached once per frame
        while the tokenizer is frozen: encoding is most of a CPU step). Requires freeze_vae=True."""
        if not self.freeze_vae:
            raise RuntimeError("forward_train_codes needs a frozen tokenizer (freeze_vae=True); use forward_train")
        if codes.shape[:2] != poses.shape[:2] or poses.shape[-1] != self.pose_dim:
            raise ValueError(f"codes {tuple(codes.shape)} and poses {tuple(poses.shape)} disagree")
        b, f = codes.shape[:2]
        tokens = self.vae.vqvae.lookup(codes.flatten(0, 1)).view(b, f, self.vae.e_dim, *codes.shape[2:])
        return self._forward_tokens(tokens, codes, poses)

    def _forward_tokens(self, tokens: Tensor, codes: Tensor, poses: Tensor) -> dict[str, Tensor]:
        logits, feat = self.transformer(tokens[:, :-1], self.pose_encoder(poses[:, :-1].to(tokens.dtype)))
        target = codes[:, 1:]
        ce_codes = code_ce(logits, target)
        pose_pred = self._next_pose(feat, poses[:, :-1], poses[:, 1:])
        pose_loss = self._pose_loss(pose_pred, poses[:, 1:])
        loss = ce_codes + self.pose_loss_weight * pose_loss
        code_acc = (logits.detach().argmax(2) == target).float().mean()
        return {"loss": loss, "ce_codes": ce_codes.detach(), "pose_loss": pose_loss.detach(), "code_acc": code_acc}

    def forward(self, occ: Tensor, poses: Tensor) -> dict[str, Tensor]:
        return self.forward_train(occ, poses)

    @torch.no_grad()
    def rollout(self, occ_hist: Tensor, poses_hist: Tensor, n_future: int | None = None) -> dict[str, Tensor]:
        """Autoregressive forecast. occ_hist (B, H, X, Y, Z), poses_hist (B, H, pose_dim) (history frames,
        relative to the last one) -> {'occ': (B, n, X, Y, Z) labels, 'poses': (B, n, pose_dim), 'codes':
        (B, n, h, w)} with n = n_future (default: future_frames). Uses the last `num_frames` frames as context."""
        n_future = self.future_frames if n_future is None else int(n_future)
        tokens, codes, _ = self._tokenize(occ_hist)
        poses = poses_hist.float()
        window = self.transformer.num_frames
        new_codes, new_poses = [], []
        for _ in range(n_future):
            ctx_tokens, ctx_poses = tokens[:, -window:], poses[:, -window:]
            logits, feat = self.transformer(ctx_tokens, self.pose_encoder(ctx_poses.to(ctx_tokens.dtype)))
            next_codes = logits[:, -1].argmax(1)  # (B, h, w)
            next_tokens = self.vae.vqvae.lookup(next_codes).to(tokens.dtype)
            next_pose = self._next_pose(feat[:, -1:], ctx_poses[:, -1:], None)
            if self.pose_mode == "state":
                next_pose[..., 3:7] = F.normalize(next_pose[..., 3:7], dim=-1)
            tokens = torch.cat([tokens, next_tokens[:, None]], dim=1)
            poses = torch.cat([poses, next_pose], dim=1)
            new_codes.append(next_codes)
            new_poses.append(next_pose[:, 0])
        codes_future = torch.stack(new_codes, dim=1)
        return {"occ": self.vae.decode_indices(codes_future), "poses": torch.stack(new_poses, dim=1),
                "codes": codes_future}
