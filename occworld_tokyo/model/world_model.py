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
  next displacement per command (3 modes). pose_loss = the release's PlanRegLossLidar (l2): each mode's
  displacements are summed over the predicted frames into a trajectory, the distance to the true cumulative
  trajectory at frame t is weighted by the target command one-hot of frame t, summed and divided by B and T.
  In the rollout the mode is picked by the command of the frame being predicted (`future_commands`, as the
  release's `forward_autoreg_with_pose` uses the true gt_mode), or by the current frame's command when none is given.

Plan conditioning (model/plan.py; `plan` module, off unless configured): the scene queries of frame t start from
frame t's tokens warped to the planned pose of frame t+1 plus an embedding of that motion. Training feeds the true
next poses (teacher forcing; `plan.dropout` of the windows run without, as OccWorld); `rollout(..., plan=P)` feeds
the planned poses P and appends them to the context instead of the predicted ones; `rollout` without a plan is
OccWorld's (the model's own poses). The rollout's output is the model's own: hand-made steps on top of it are named
methods of the evaluation (evaluation/hand_made.py), never part of the model.

The transformer reads the straight-through latents z + sg[z_q - z] of the history (what the release passes on) and,
in the rollout, the exact codebook rows of the predicted codes.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .losses import code_ce
from .plan import PlanConditioning
from .pose import PoseDecoder, PoseEncoder
from .transformer import PlanUAutoRegTransformer
from .vae import VAERes2D


class TransVQVAE(nn.Module):
    """World model. Construct with build_model(cfg['model']) (see config/_base_/model_tokyo.py for the keys)."""

    def __init__(self, vae: VAERes2D, transformer: PlanUAutoRegTransformer, pose_encoder: PoseEncoder,
                 pose_decoder: PoseDecoder, history_frames: int, future_frames: int, pose_mode: str = "state",
                 pose_loss_weight: float = 0.1, freeze_vae: bool = True, freeze_transformer: bool = False,
                 freeze_pose: bool = False, plan: PlanConditioning | None = None):
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
        if history_frames + future_frames > transformer.num_frames:
            raise ValueError(f"history+future-1 = {history_frames + future_frames - 1} input frames need "
                             f"transformer.num_frames >= {history_frames + future_frames} temporal embeddings "
                             f"(got {transformer.num_frames})")
        if plan is not None and pose_mode != "state":
            raise ValueError("model.plan needs pose_mode='state' (13-d poses with orientation)")
        self.vae, self.transformer = vae, transformer
        self.plan = plan
        self.pose_encoder, self.pose_decoder = pose_encoder, pose_decoder
        self.history_frames, self.future_frames = int(history_frames), int(future_frames)
        self.pose_mode, self.pose_loss_weight = pose_mode, float(pose_loss_weight)
        self.pose_dim = pose_encoder.in_channels
        self.freeze_vae, self.freeze_transformer, self.freeze_pose = bool(freeze_vae), bool(freeze_transformer), \
            bool(freeze_pose)
        for module in self._frozen_modules():
            module.requires_grad_(False)
            module.eval()
        if self.gated:  # the gate is never frozen: frozen transformer and pose = the gate trained alone
            self.plan.gate.requires_grad_(True)

    # -- freezing ------------------------------------------------------------------------------------------
    def _frozen_modules(self) -> list[nn.Module]:
        """The frozen parts. `freeze_transformer` covers the plan conditioning too, except its learned gate
        (model/gate.py), which always trains: with the transformer and the pose parts frozen the gate trains alone."""
        frozen: list[nn.Module] = []
        if self.freeze_vae:
            frozen.append(self.vae)
        if self.freeze_transformer:
            frozen.append(self.transformer)
            if self.plan is not None:
                frozen.append(self.plan)
        if self.freeze_pose:
            frozen += [self.pose_encoder, self.pose_decoder]
        return frozen

    def train(self, mode: bool = True) -> "TransVQVAE":
        """Like nn.Module.train, but frozen parts always stay in eval mode (no dropout, fixed statistics)."""
        super().train(mode)
        for module in self._frozen_modules():
            module.eval()
        if self.gated:
            self.plan.gate.train(mode)
        return self

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Parameters of the non-frozen parts (what the optimizer should get)."""
        frozen = {id(p) for m in self._frozen_modules() for p in m.parameters()}
        if self.gated:
            frozen -= {id(p) for p in self.plan.gate.parameters()}
        return [p for p in self.parameters() if id(p) not in frozen and p.requires_grad]

    # -- pieces --------------------------------------------------------------------------------------------
    def _tokenize(self, occ: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """occ (B, F, X, Y, Z) -> tokens (B, F, e_dim, h, w), codes (B, F, h, w), VQ loss (0 if frozen)."""
        b, f = occ.shape[:2]
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_vae):
            z_q, vq_loss, codes = self.vae._encode(occ)
        return z_q.view(b, f, *z_q.shape[1:]), codes.view(b, f, *codes.shape[1:]), vq_loss

    def _next_pose(self, decoded: Tensor, pose_in: Tensor, command: Tensor | None = None) -> Tensor:
        """Pose-decoder output (B, T, modes, D) at frames t -> pose vectors for frames t+1 (B, T, pose_dim).
        state: pose_in + delta. nuscenes: the displacement of the mode that `command` (B, T, 3) one-hot picks
        (default: pose_in's own command), followed by that command."""
        decoded = decoded.float()
        if self.pose_mode == "state":
            return pose_in.float() + decoded[..., 0, :]
        src = command if command is not None else pose_in[..., 2:5]
        mode = src.argmax(-1)  # (B, T)
        disp = decoded.gather(2, mode[..., None, None].expand(*mode.shape, 1, decoded.shape[-1])).squeeze(2)
        return torch.cat([disp, F.one_hot(mode, 3).to(disp.dtype)], dim=-1)

    def _pose_loss(self, decoded: Tensor, pose_in: Tensor, target: Tensor) -> Tensor:
        """decoded (B, T, modes, D) from frames 0..T-1, pose_in (B, T, pose_dim), target (B, T, pose_dim) of frames
        1..T -> scalar (see the module docstring)."""
        target = target.float()
        if self.pose_mode == "state":
            pred = self._next_pose(decoded, pose_in)
            return ((pred[..., :3] - target[..., :3]).norm(dim=-1).mean()
                    + (pred[..., 3:] - target[..., 3:]).norm(dim=-1).mean())
        b, t = decoded.shape[:2]
        traj = decoded.float().cumsum(1)                       # (B, T, modes, 2) per-mode trajectories
        gt_traj = target[..., :2].cumsum(1)[:, :, None]        # (B, T, 1, 2)
        dist = (traj - gt_traj).pow(2).sum(-1).sqrt()          # (B, T, modes)
        return (dist * target[..., 2:5]).sum() / b / t

    # -- API -----------------------------------------------------------------------------------------------
    def forward_train(self, occ: Tensor, poses: Tensor, codes: Tensor | None = None,
                      warp: dict[str, Tensor] | None = None) -> dict[str, Tensor]:
        """Teacher-forced step. occ (B, F, X, Y, Z) label ids with F = history+future (any 2 <= F <= num_frames+1
        works); poses (B, F, pose_dim). Returns {'loss', 'ce_codes', 'pose_loss', 'code_acc'} (scalars; only
        'loss' carries gradient). `codes` (B, F, h, w): occ's code indices through this (frozen) tokenizer, already
        known (training/code_cache.py): occ is then not encoded (`forward_train_codes`). `warp` (a model with
        `plan.gate`): {'warped', 'valid'} (B, future, X, Y, Z) and 'same' (B, X, Y, Z), the last history frame moved
        into each future frame (`gate_inputs`), and 'visible' (B, future, X, Y, Z) bool, the future frames' camera
        masks, for a gate with visible_weight; the gate's loss is then added (`gate_nll`)."""
        if occ.shape[:2] != poses.shape[:2] or poses.shape[-1] != self.pose_dim:
            raise ValueError(f"occ {tuple(occ.shape)} and poses {tuple(poses.shape)} disagree "
                             f"(expected poses (B, F, {self.pose_dim}))")
        if codes is not None:
            out = self.forward_train_codes(codes, poses)
        else:
            tokens, codes, vq_loss = self._tokenize(occ)
            out = self._forward_tokens(tokens, codes, poses)
            if not self.freeze_vae:
                out["loss"] = out["loss"] + self.vae.loss_weights["embed"] * vq_loss
        if warp is not None and self.gated:
            gate_nll = self._gate_loss(codes.detach(), poses, occ, warp)
            out["loss"] = out["loss"] + self.plan.gate.loss_weight * gate_nll
            out["gate_nll"] = gate_nll.detach()
        return out

    @property
    def gated(self) -> bool:
        """A plan-conditioned model with a learned voxel gate (model/gate.py)."""
        return self.plan is not None and getattr(self.plan, "gate", None) is not None

    def _gate_loss(self, codes: Tensor, poses: Tensor, occ: Tensor, warp: dict[str, Tensor]) -> Tensor:
        """NLL of the gated forecast of one future frame (drawn per step) of the rollout along the true path, from
        the history's codes: the gate learns on the forecasts it will see (the rollout's, not teacher-forced ones)."""
        H = self.history_frames
        n = occ.shape[1] - H
        with torch.no_grad():
            was = self.training
            self.train(False)
            try:
                b = codes.shape[0]
                tokens = self.vae.vqvae.lookup(codes[:, :H].flatten(0, 1)).view(b, H, self.vae.e_dim, *codes.shape[2:])
                roll = self._rollout_tokens(tokens, codes[:, :H], poses[:, :H].float(), n, None, poses[:, H:].float())
            finally:
                self.train(was)
            i = int(torch.randint(n, (1,)))
            logits = self.vae.decode_latents(self.vae.vqvae.lookup(roll["codes"][:, i]))
        gated = self.plan.gate(logits, warp["warped"][:, i], warp["valid"][:, i], warp["same"])
        visible = warp.get("visible")
        return self.plan.gate.nll(gated, occ[:, H + i], None if visible is None else visible[:, i])

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

    @property
    def plan_conditioned(self) -> bool:
        return self.plan is not None

    def _plan_queries(self, tokens: Tensor, codes: Tensor, poses: Tensor, next_poses: Tensor | None) \
            -> tuple[Tensor | None, Tensor | None]:
        """(scene query inputs, codes to copy) from the planned next poses; (None, None) = OccWorld's queries. In
        training, `plan.dropout` of the windows keep the plain tokens."""
        if self.plan is None or next_poses is None:
            return None, None
        keep = None
        if self.training and self.plan.dropout > 0:
            keep = torch.rand(tokens.shape[0], device=tokens.device) >= self.plan.dropout
        return self.plan(tokens, codes, poses, next_poses, keep)

    def _predict(self, tokens: Tensor, codes: Tensor, poses: Tensor, next_poses: Tensor | None) \
            -> tuple[Tensor, Tensor]:
        """The transformer on frames t (tokens (B, F, C, h, w), codes (B, F, h, w), poses (B, F, pose_dim)), with
        the planned poses of frames t+1 when plan-conditioned -> (code logits, pose features) for frames t+1."""
        queries, copy = self._plan_queries(tokens, codes, poses, next_poses)
        logits, feat = self.transformer(tokens, self.pose_encoder(poses.to(tokens.dtype)), queries)
        if copy is not None:
            logits = self.plan.add_copy_prior(logits, copy)
        return logits, feat

    def _forward_tokens(self, tokens: Tensor, codes: Tensor, poses: Tensor) -> dict[str, Tensor]:
        logits, feat = self._predict(tokens[:, :-1], codes[:, :-1], poses[:, :-1], poses[:, 1:])
        target = codes[:, 1:]
        ce_codes = code_ce(logits, target)
        pose_loss = self._pose_loss(self.pose_decoder(feat), poses[:, :-1], poses[:, 1:])
        loss = ce_codes + self.pose_loss_weight * pose_loss
        code_acc = (logits.detach().argmax(2) == target).float().mean()
        return {"loss": loss, "ce_codes": ce_codes.detach(), "pose_loss": pose_loss.detach(), "code_acc": code_acc}

    def forward(self, occ: Tensor, poses: Tensor) -> dict[str, Tensor]:
        return self.forward_train(occ, poses)

    @torch.no_grad()
    def rollout(self, occ_hist: Tensor, poses_hist: Tensor, n_future: int | None = None,
                future_commands: Tensor | None = None, plan: Tensor | None = None,
                warp: dict[str, Tensor] | None = None, keep_logits: bool = False) -> dict[str, Tensor]:
        """Autoregressive forecast. occ_hist (B, H, X, Y, Z), poses_hist (B, H, pose_dim) (history frames,
        relative to the last one) -> {'occ': (B, n, X, Y, Z) labels, 'poses': (B, n, pose_dim), 'codes':
        (B, n, h, w), 'code_logits': (B, n, n_codes, h, w), 'pose_decoded': (B, n, modes, D)} with
        n = n_future (default: future_frames). Uses the last num_frames - 1 frames as context. nuscenes mode:
        `future_commands` (B, n, 3), the command one-hot of each predicted frame, picks its mode (the release's
        rollout uses the true gt_mode); without it the current frame's command is kept. `plan` (B, n, pose_dim): the
        planned poses of the predicted frames (relative to the current frame, like poses_hist); needs a
        plan-conditioned model; they condition the scene and are returned as 'poses'. `warp` (a model with
        `plan.gate`, along a plan): the last history frame moved along the plan ({'warped', 'valid'} (B, n, X, Y, Z),
        'same' (B, X, Y, Z); `gate_inputs`): 'occ' is then the gated forecast and 'occ_ungated' the decoder's.
        `keep_logits`: also 'logits' (B, n, C, X, Y, Z) float32, the decoder's class logits of each forecast frame (what
        the hand-made methods add their priors to, so they need no second decoding; B*n*C*X*Y*Z floats of memory)."""
        n_future = self.future_frames if n_future is None else int(n_future)
        if future_commands is not None and (self.pose_mode != "nuscenes" or future_commands.shape[1] < n_future):
            raise ValueError("future_commands: nuscenes pose mode only, one (3,) one-hot per predicted frame")
        if plan is not None:
            if self.plan is None:
                raise ValueError("rollout(plan=...): this model is not plan-conditioned (its config has no "
                                 "model.plan with enabled=True); forecast without a plan or train with one")
            if plan.shape[0] != occ_hist.shape[0] or plan.shape[1] < n_future or plan.shape[-1] != self.pose_dim:
                raise ValueError(f"plan {tuple(plan.shape)}: expected (B={occ_hist.shape[0]}, >= {n_future}, "
                                 f"{self.pose_dim})")
            plan = plan.float()
        tokens, codes, _ = self._tokenize(occ_hist)
        out = self._rollout_tokens(tokens, codes, poses_hist.float(), n_future, future_commands, plan)
        gate = warp is not None and plan is not None and self.gated
        if gate or keep_logits:
            gated, ungated, kept = [], [], []
            for i in range(n_future):  # one decoding per frame serves the decoder's, the gated forecast and logits
                logits = self.vae.decode_latents(self.vae.vqvae.lookup(out["codes"][:, i]))
                ungated.append(logits.argmax(1))
                if gate:
                    gated.append(self.plan.gate(logits, warp["warped"][:, i], warp["valid"][:, i],
                                                warp["same"]).argmax(1))
                if keep_logits:
                    kept.append(logits.float())
            out["occ"] = torch.stack(gated if gate else ungated, dim=1)
            if gate:
                out["occ_ungated"] = torch.stack(ungated, dim=1)
            if keep_logits:
                out["logits"] = torch.stack(kept, dim=1)
        else:
            out["occ"] = self.vae.decode_indices(out["codes"])
        return out

    def _rollout_tokens(self, tokens: Tensor, codes: Tensor, poses: Tensor, n_future: int,
                        future_commands: Tensor | None, plan: Tensor | None) -> dict[str, Tensor]:
        """The autoregressive loop of `rollout` from the history's tokens (B, H, C, h, w), codes (B, H, h, w) and
        poses (B, H, pose_dim) -> the rollout's dict without 'occ'."""
        window = self.transformer.num_frames - 1
        new_codes, new_poses, code_logits, decoded = [], [], [], []
        for i in range(n_future):
            ctx_tokens, ctx_codes, ctx_poses = tokens[:, -window:], codes[:, -window:], poses[:, -window:]
            next_poses = None if plan is None else torch.cat([ctx_poses[:, 1:], plan[:, i:i + 1]], dim=1)
            logits, feat = self._predict(ctx_tokens, ctx_codes, ctx_poses, next_poses)
            next_codes = logits[:, -1].argmax(1)  # (B, h, w)
            next_tokens = self.vae.vqvae.lookup(next_codes).to(tokens.dtype)
            dec = self.pose_decoder(feat[:, -1:])
            command = None if future_commands is None else future_commands[:, i:i + 1].float()
            next_pose = self._next_pose(dec, ctx_poses[:, -1:], command)
            if self.pose_mode == "state":
                next_pose[..., 3:7] = F.normalize(next_pose[..., 3:7], dim=-1)
            if plan is not None:
                next_pose = plan[:, i:i + 1]
            tokens = torch.cat([tokens, next_tokens[:, None]], dim=1)
            codes = torch.cat([codes, next_codes[:, None]], dim=1)
            poses = torch.cat([poses, next_pose], dim=1)
            new_codes.append(next_codes)
            new_poses.append(next_pose[:, 0])
            code_logits.append(logits[:, -1])
            decoded.append(dec[:, 0])
        codes_future = torch.stack(new_codes, dim=1)
        return {"poses": torch.stack(new_poses, dim=1),
                "codes": codes_future, "code_logits": torch.stack(code_logits, dim=1),
                "pose_decoded": torch.stack(decoded, dim=1)}
