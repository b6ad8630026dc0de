"""`PlanUAutoRegTransformer`: OccWorld's autoregressive U-Net transformer over scene-token maps plus ego tokens.

Input: per frame a token map (C, h, w) (the tokenizer's quantized latents, C = embed_dim) and one ego token (C,)
(the pose encoder's output). Output: per frame logits over the codebook for the NEXT frame's tokens and an ego
feature from which the pose decoder predicts the next pose. With L = num_layers U-Net levels and C_i = C * 2**i:

    + temporal_embeddings / pose_temporal_embeddings (learned, one per frame index)
    level i = 0..L-1 (encoder):   temporal_attentions_en[i]  (causal attention over frames, per spatial position)
                                  pose_attn_en[i]            (ego: causal self-attn over frames, cross-attn to its
                                                              frame's scene tokens, FFN)
                                  encoders[i] (2 ResBlocks)  | pose_en[i] (MLP)      -> skip
                                  downsamples[i] (2x2 conv, stride 2)
    mid (2 ResBlocks)             | pose_mid (MLP)
    level j = 0..L-1 (decoder):   temporal_attentions_de[j], pose_attn_de[j]
                                  upsamples[j] (2x2 transposed conv) | pose_up[j]; concatenate the skip
                                  decoders[j] (2 ResBlocks)  | pose_de[j]
    conv_out (3x3 -> n_codes logits) | pose_out (Linear)

Attention layers are post-norm: x = LN(x + Attn(x)); x = LN(x + FFN(x)). Scene tokens never attend to ego
tokens; every operation mixing frames is causal (frame t sees frames 0..t), so outputs at t depend only on
inputs at <= t. Attention uses F.scaled_dot_product_attention; parameter names equal nn.MultiheadAttention's
(`in_proj_weight`, `in_proj_bias`, `out_proj`) so released checkpoints load.

The order inside a decoder level (attention before the upsampling, on the C_{L-j}-wide features) is inferred from
the released parameter shapes, which fit it; see docs/model.md.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor


class MultiheadAttention(nn.Module):
    """nn.MultiheadAttention's parameters (`in_proj_weight` (3C, C), `in_proj_bias`, `out_proj`) over
    scaled_dot_product_attention, batch-first: query (N, Lq, C), key/value source (N, Lk, C)."""

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0):
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        self.embed_dim, self.num_heads, self.dropout = embed_dim, num_heads, dropout
        self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * embed_dim))
        self.out_proj = nn.Linear(embed_dim, embed_dim)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, x: Tensor, source: Tensor | None = None, causal: bool = False) -> Tensor:
        n, lq, c = x.shape
        if source is None:
            q, k, v = F.linear(x, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1)
        else:
            w_q, w_kv = self.in_proj_weight.split([c, 2 * c])
            b_q, b_kv = self.in_proj_bias.split([c, 2 * c])
            q = F.linear(x, w_q, b_q)
            k, v = F.linear(source, w_kv, b_kv).chunk(2, dim=-1)
        heads = lambda t: t.reshape(n, t.shape[1], self.num_heads, c // self.num_heads).transpose(1, 2)
        out = F.scaled_dot_product_attention(heads(q), heads(k), heads(v), is_causal=causal,
                                             dropout_p=self.dropout if self.training else 0.0)
        return self.out_proj(out.transpose(1, 2).reshape(n, lq, c))


class FFN(nn.Module):
    """fc1 -> GELU -> dropout -> fc2 -> dropout."""

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.fc2(self.drop(F.gelu(self.fc1(x)))))


class TemporalAttentionLayer(nn.ModuleList):
    """[0] causal self-attention over frames, [1] LayerNorm, [2] FFN, [3] LayerNorm (checkpoint indices)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: int, dropout: float):
        super().__init__([MultiheadAttention(dim, num_heads, dropout), nn.LayerNorm(dim),
                          FFN(dim, dim * mlp_ratio, dropout), nn.LayerNorm(dim)])

    def forward(self, x: Tensor) -> Tensor:
        """x (N, F, C): N independent sequences (one per batch element and spatial position)."""
        attn, norm1, ffn, norm2 = self
        x = norm1(x + attn(x, causal=True))
        return norm2(x + ffn(x))


class PoseAttentionLayer(nn.ModuleList):
    """[0] causal self-attention over the ego tokens, [1] LN, [2] cross-attention of each ego token to its own
    frame's scene tokens, [3] LN, [4] FFN, [5] LN (checkpoint indices)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: int, dropout: float):
        super().__init__([MultiheadAttention(dim, num_heads, dropout), nn.LayerNorm(dim),
                          MultiheadAttention(dim, num_heads, dropout), nn.LayerNorm(dim),
                          FFN(dim, dim * mlp_ratio, dropout), nn.LayerNorm(dim)])

    def forward(self, pose: Tensor, scene: Tensor) -> Tensor:
        """pose (B, F, C); scene (B, F, C, h, w) -> pose (B, F, C)."""
        self_attn, norm1, cross_attn, norm2, ffn, norm3 = self
        b, f, c = pose.shape
        pose = norm1(pose + self_attn(pose, causal=True))
        keys = scene.flatten(3).transpose(2, 3).reshape(b * f, -1, c)  # (B*F, h*w, C)
        pose = norm2(pose + cross_attn(pose.reshape(b * f, 1, c), keys).view(b, f, c))
        return norm3(pose + ffn(pose))


class ResBlock(nn.Module):
    """ln -> conv1 (3x3) -> SiLU -> conv2 (3x3), plus a 1x1 `shortcut` when the width changes.

    `ln` is a LayerNorm over `norm_shape`: (h, w) in the encoder levels, (C_in, h, w) in mid and the decoder
    levels (as in the released checkpoint), so it depends on the token-map size.
    """

    def __init__(self, norm_shape: Sequence[int], in_channels: int, out_channels: int):
        super().__init__()
        self.ln = nn.LayerNorm(tuple(norm_shape))
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, 1, 1)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1)
        if in_channels != out_channels:
            self.shortcut = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv2(F.silu(self.conv1(F.silu(self.ln(x)))))
        return h + (self.shortcut(x) if hasattr(self, "shortcut") else x)


def _mlp(in_dim: int, out_dim: int) -> nn.Sequential:
    """Linear -> SiLU -> Linear (checkpoint indices 0 and 2)."""
    return nn.Sequential(nn.Linear(in_dim, out_dim), nn.SiLU(), nn.Linear(out_dim, out_dim))


def _down_size(s: int) -> int:
    return (s - 2) // 2 + 1  # 2x2 conv, stride 2


class PlanUAutoRegTransformer(nn.Module):
    """See the module docstring. forward(tokens (B, F, C, h, w), pose_tokens (B, F, C)) ->
    (code logits (B, F, n_codes, h, w), pose features (B, F, C)); output at frame t predicts frame t+1."""

    def __init__(self, token_size: Sequence[int] = (50, 50), embed_dim: int = 128, num_layers: int = 2,
                 temporal_attn_layers: int = 6, pose_attn_layers: int = 2, num_heads: int = 8,
                 mlp_ratio: int = 4, dropout: float = 0.1, num_frames: int = 16, n_codes: int = 512, **unused):
        super().__init__()
        if unused:
            raise TypeError(f"PlanUAutoRegTransformer: unknown config keys {sorted(unused)}")
        self.num_layers, self.num_frames, self.n_codes, self.embed_dim = num_layers, num_frames, n_codes, embed_dim
        C, L = embed_dim, num_layers
        sizes = [tuple(token_size)]
        for _ in range(L):
            sizes.append(tuple(_down_size(s) for s in sizes[-1]))
        if min(sizes[-1]) < 1:
            raise ValueError(f"token map {tuple(token_size)} too small for {L} U-Net levels")
        self.level_sizes = sizes

        def temporal(dim: int) -> nn.ModuleList:
            return nn.ModuleList(TemporalAttentionLayer(dim, num_heads, mlp_ratio, dropout)
                                 for _ in range(temporal_attn_layers))

        def pose_attn(dim: int) -> nn.ModuleList:
            return nn.ModuleList(PoseAttentionLayer(dim, num_heads, mlp_ratio, dropout)
                                 for _ in range(pose_attn_layers))

        self.temporal_embeddings = nn.Embedding(num_frames, C)
        self.pose_temporal_embeddings = nn.Embedding(num_frames, C)
        enc_in = [C * 2 ** max(i - 1, 0) for i in range(L)]   # width entering encoder level i
        enc_out = [C * 2 ** i for i in range(L)]
        self.temporal_attentions_en = nn.ModuleList(temporal(enc_in[i]) for i in range(L))
        self.pose_attn_en = nn.ModuleList(pose_attn(enc_in[i]) for i in range(L))
        self.encoders = nn.ModuleList(
            nn.Sequential(ResBlock(sizes[i], enc_in[i], enc_out[i]), ResBlock(sizes[i], enc_out[i], enc_out[i]))
            for i in range(L))
        self.pose_en = nn.ModuleList(_mlp(enc_in[i], enc_out[i]) for i in range(L))
        self.downsamples = nn.ModuleList(nn.Conv2d(enc_out[i], enc_out[i], 2, 2) for i in range(L))

        mid_in, mid_out = enc_out[-1], C * 2 ** L
        self.mid = nn.Sequential(ResBlock((mid_in, *sizes[L]), mid_in, mid_out),
                                 ResBlock((mid_out, *sizes[L]), mid_out, mid_out))
        self.pose_mid = _mlp(mid_in, mid_out)

        dec_in = [C * 2 ** (L - j) for j in range(L)]        # width entering decoder level j (and after concat)
        dec_out = [C * 2 ** (L - 1 - j) for j in range(L)]
        self.temporal_attentions_de = nn.ModuleList(temporal(dec_in[j]) for j in range(L))
        self.pose_attn_de = nn.ModuleList(pose_attn(dec_in[j]) for j in range(L))
        self.upsamples = nn.ModuleList(nn.ConvTranspose2d(dec_in[j], dec_out[j], 2, 2) for j in range(L))
        self.pose_up = nn.ModuleList(nn.Linear(dec_in[j], dec_out[j]) for j in range(L))
        self.decoders = nn.ModuleList(
            nn.Sequential(ResBlock((dec_in[j], *sizes[L - 1 - j]), dec_in[j], dec_out[j]),
                          ResBlock((dec_out[j], *sizes[L - 1 - j]), dec_out[j], dec_out[j]))
            for j in range(L))
        self.pose_de = nn.ModuleList(_mlp(dec_in[j], dec_out[j]) for j in range(L))
        self.conv_out = nn.Conv2d(C, n_codes, 3, 1, 1)
        self.pose_out = nn.Linear(C, C)

    @staticmethod
    def _temporal(x: Tensor, layers: nn.ModuleList) -> Tensor:
        """Causal attention over frames at every spatial position: x (B, F, C, h, w)."""
        b, f, c, h, w = x.shape
        seq = x.permute(0, 3, 4, 1, 2).reshape(b * h * w, f, c)
        for layer in layers:
            seq = layer(seq)
        return seq.view(b, h, w, f, c).permute(0, 3, 4, 1, 2)

    @staticmethod
    def _per_frame(x: Tensor, fn) -> Tensor:
        """Apply a 2-D module to every frame: (B, F, C, h, w) -> (B, F, C', h', w')."""
        b, f = x.shape[:2]
        y = fn(x.flatten(0, 1))
        return y.view(b, f, *y.shape[1:])

    def forward(self, tokens: Tensor, pose_tokens: Tensor) -> tuple[Tensor, Tensor]:
        b, f, c, h, w = tokens.shape
        if f > self.num_frames:
            raise ValueError(f"{f} frames exceed the transformer's num_frames={self.num_frames}")
        if (h, w) != self.level_sizes[0]:
            raise ValueError(f"token map {h}x{w} does not match the configured token_size {self.level_sizes[0]}")
        t = torch.arange(f, device=tokens.device)
        x = tokens + self.temporal_embeddings(t)[None, :, :, None, None].to(tokens.dtype)
        p = pose_tokens + self.pose_temporal_embeddings(t)[None].to(pose_tokens.dtype)

        skips: list[tuple[Tensor, Tensor]] = []
        for i in range(self.num_layers):
            x = self._temporal(x, self.temporal_attentions_en[i])
            for layer in self.pose_attn_en[i]:
                p = layer(p, x)
            x = self._per_frame(x, self.encoders[i])
            p = self.pose_en[i](p)
            skips.append((x, p))
            x = self._per_frame(x, self.downsamples[i])
        x = self._per_frame(x, self.mid)
        p = self.pose_mid(p)
        for j in range(self.num_layers):
            x = self._temporal(x, self.temporal_attentions_de[j])
            for layer in self.pose_attn_de[j]:
                p = layer(p, x)
            skip_x, skip_p = skips.pop()
            up = self.upsamples[j]
            x = self._per_frame(x, lambda y: up(y, output_size=skip_x.shape[-2:]))
            x = torch.cat([x, skip_x], dim=2)
            p = torch.cat([self.pose_up[j](p), skip_p], dim=-1)
            x = self._per_frame(x, self.decoders[j])
            p = self.pose_de[j](p)
        logits = self._per_frame(x, self.conv_out)
        return logits, self.pose_out(p)
