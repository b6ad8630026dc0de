"""`PlanUAutoRegTransformer`: OccWorld's autoregressive U-Net transformer over scene-token maps plus ego tokens,
computing what the released `PlanUAutoRegTransformer` computes (checked against the release's recorded activations,
tests/test_model_release_parity.py; REFERENCE.md s1 "Computation order of the release").

Input: per frame t = 0..F-1 a token map (C, h, w) (the tokenizer's quantized latents, C = embed_dim) and one ego
token (C,) (the pose encoder's output). Output at frame t: logits over the codebook for frame t+1's tokens and an
ego feature from which the pose decoder predicts the next pose.

Two streams, for the scene and the ego tokens alike: **queries** = tokens + temporal embedding t+1 (the frame to
predict) and **tokens** = tokens + temporal embedding t. Causal attention (frame t sees 0..t) updates only the
queries, reading keys/values from the tokens stream; the tokens stream goes through the same convolutions and
pose MLPs (shared weights) but never through attention. The output is the queries stream. With L = num_layers
U-Net levels and C_i = C * 2**i:

    encoder level i:  pose_attn_en[i]  (pose queries: causal attention over the pose tokens, then attention to
                                        their frame's h*w scene queries, FFN; post-norm)
                      pose_en[i]       (Linear-ReLU-Linear-ReLU, both pose streams)       -> pose skip
                      temporal_attentions_en[i] (scene queries attend scene tokens over frames, per position)
                      encoders[i]      (2 UnetBlocks, both streams)                       -> scene skip
                      downsamples[i]   (2x2 conv, stride 2: 50 -> 25 -> 12)
    mid               (2 UnetBlocks) | pose_mid (MLP)
    decoder level j:  upsamples[j] (2x2 transposed conv), zero pad to the skip's size (12 -> 24 -> 25),
                      concatenate [upsampled, skip]
                      temporal_attentions_de[j]
                      pose_up[j] (Linear), concatenate [pose_up, pose skip]
                      pose_attn_de[j] (attends the scene queries after this level's temporal attention)
                      pose_de[j] (MLP) | decoders[j] (2 UnetBlocks); the last level skips the tokens streams,
                      which the release computes but never reads
    conv_out (3x3 -> n_codes logits) on the queries | pose_out (Linear) on the pose queries

UnetBlock: relu(conv2(relu(conv1(LayerNorm(x)))) + shortcut(x)); its LayerNorm is over (h, w) in the encoder
levels and over (C, h, w) in mid and the decoder (as released). Attention layers are post-norm
(x = LN(x + Attn(x)); x = LN(x + FFN(x))), run through F.scaled_dot_product_attention with nn.MultiheadAttention's
parameter names (`in_proj_weight`, `in_proj_bias`, `out_proj`) so released checkpoints load. Dropout (attention
weights and FFN) is 0 in the release; the Tokyo configs use the guide's 0.1.

Frame count: `num_frames` here counts the temporal embeddings (the release's num_frames + its offset 1), so a
forward takes at most num_frames - 1 frames.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .cpu_ops import Linear, linear


class MultiheadAttention(nn.Module):
    """nn.MultiheadAttention's parameters (`in_proj_weight` (3C, C), `in_proj_bias`, `out_proj`) over
    scaled_dot_product_attention, batch-first: query (N, Lq, C), key/value source (N, Lk, C). Every attention of
    the released model reads keys and values from another stream than its queries, so `source` is required."""

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0):
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        self.embed_dim, self.num_heads, self.dropout = embed_dim, num_heads, dropout
        self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * embed_dim))
        self.out_proj = Linear(embed_dim, embed_dim)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, x: Tensor, source: Tensor, causal: bool = False) -> Tensor:
        n, lq, c = x.shape
        w_q, w_kv = self.in_proj_weight.split([c, 2 * c])
        b_q, b_kv = self.in_proj_bias.split([c, 2 * c])
        q = linear(x, w_q, b_q)
        k, v = linear(source, w_kv, b_kv).chunk(2, dim=-1)
        heads = lambda t: t.reshape(n, t.shape[1], self.num_heads, c // self.num_heads).transpose(1, 2)
        out = F.scaled_dot_product_attention(heads(q), heads(k), heads(v), is_causal=causal,
                                             dropout_p=self.dropout if self.training else 0.0)
        return self.out_proj(out.transpose(1, 2).reshape(n, lq, c))


class FFN(nn.Module):
    """fc1 -> GELU -> dropout -> fc2 -> dropout."""

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0):
        super().__init__()
        self.fc1 = Linear(dim, hidden)
        self.fc2 = Linear(hidden, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.fc2(self.drop(F.gelu(self.fc1(x)))))


class TemporalAttentionLayer(nn.ModuleList):
    """[0] attention over frames, [1] LayerNorm, [2] FFN, [3] LayerNorm (checkpoint indices)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: int, dropout: float):
        super().__init__([MultiheadAttention(dim, num_heads, dropout), nn.LayerNorm(dim),
                          FFN(dim, dim * mlp_ratio, dropout), nn.LayerNorm(dim)])

    def forward(self, queries: Tensor, tokens: Tensor) -> Tensor:
        """queries, tokens (N, F, C): N independent sequences (one per batch element and spatial position).
        Query frame t attends token frames 0..t. Returns the updated queries."""
        attn, norm1, ffn, norm2 = self
        x = norm1(queries + attn(queries, tokens, causal=True))
        return norm2(x + ffn(x))


class PoseAttentionLayer(nn.ModuleList):
    """[0] causal attention of the pose queries over the pose tokens, [1] LN, [2] attention of each frame's pose
    query to that frame's h*w scene queries, [3] LN, [4] FFN, [5] LN (checkpoint indices)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: int, dropout: float):
        super().__init__([MultiheadAttention(dim, num_heads, dropout), nn.LayerNorm(dim),
                          MultiheadAttention(dim, num_heads, dropout), nn.LayerNorm(dim),
                          FFN(dim, dim * mlp_ratio, dropout), nn.LayerNorm(dim)])

    def forward(self, pose_queries: Tensor, pose_tokens: Tensor, scene: Tensor) -> Tensor:
        """pose_queries, pose_tokens (B, F, C); scene (B*F, h*w, C), the scene queries of each frame ->
        updated pose queries (B, F, C)."""
        temporal, norm1, spatial, norm2, ffn, norm3 = self
        b, f, c = pose_queries.shape
        x = norm1(pose_queries + temporal(pose_queries, pose_tokens, causal=True))
        x = x.reshape(b * f, 1, c)
        x = norm2(x + spatial(x, scene))
        x = norm3(x + ffn(x))
        return x.view(b, f, c)


class UnetBlock(nn.Module):
    """relu(conv2(relu(conv1(ln(x)))) + shortcut(x)), as released; `shortcut` is a 1x1 conv when the width
    changes, else the identity. `ln` is a LayerNorm over `norm_shape`: (h, w) in the encoder levels, (C_in, h, w)
    in mid and the decoder levels (so it depends on the token-map size)."""

    def __init__(self, norm_shape: Sequence[int], in_channels: int, out_channels: int):
        super().__init__()
        self.ln = nn.LayerNorm(tuple(norm_shape))
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, 1, 1)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1)
        if in_channels != out_channels:
            self.shortcut = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv2(F.relu(self.conv1(self.ln(x))))
        return F.relu(h + (self.shortcut(x) if hasattr(self, "shortcut") else x))


def _mlp(in_dim: int, out_dim: int) -> nn.Sequential:
    """Linear -> ReLU -> Linear -> ReLU (checkpoint indices 0 and 2), the released pose_en/pose_mid/pose_de."""
    return nn.Sequential(Linear(in_dim, out_dim), nn.ReLU(), Linear(out_dim, out_dim), nn.ReLU())


class PlanUAutoRegTransformer(nn.Module):
    """See the module docstring. forward(tokens (B, F, C, h, w), pose_tokens (B, F, C)) ->
    (code logits (B, F, n_codes, h, w), pose features (B, F, C)); output at frame t predicts frame t+1."""

    def __init__(self, token_size: Sequence[int] = (50, 50), embed_dim: int = 128, num_layers: int = 2,
                 temporal_attn_layers: int = 6, pose_attn_layers: int = 2, num_heads: int = 8,
                 mlp_ratio: int = 4, dropout: float = 0.0, num_frames: int = 16, n_codes: int = 512, **unused):
        super().__init__()
        if unused:
            raise TypeError(f"PlanUAutoRegTransformer: unknown config keys {sorted(unused)}")
        if num_frames < 2:
            raise ValueError(f"transformer.num_frames counts temporal embeddings (input frames + 1): need >= 2, "
                             f"got {num_frames}")
        self.num_layers, self.num_frames, self.n_codes, self.embed_dim = num_layers, num_frames, n_codes, embed_dim
        C, L = embed_dim, num_layers
        sizes = [tuple(int(s) for s in token_size)]
        for _ in range(L):
            sizes.append(tuple(s // 2 for s in sizes[-1]))
        if min(sizes[-1]) < 1:
            raise ValueError(f"token map {tuple(token_size)} too small for {L} U-Net levels")
        if sizes[0][0] != sizes[0][1]:
            raise ValueError(f"token map {tuple(token_size)} must be square (the release pads the height difference "
                             f"onto the width axis and vice versa)")
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
            nn.Sequential(UnetBlock(sizes[i], enc_in[i], enc_out[i]), UnetBlock(sizes[i], enc_out[i], enc_out[i]))
            for i in range(L))
        self.pose_en = nn.ModuleList(_mlp(enc_in[i], enc_out[i]) for i in range(L))
        self.downsamples = nn.ModuleList(nn.Conv2d(enc_out[i], enc_out[i], 2, 2) for i in range(L))

        mid_in, mid_out = enc_out[-1], C * 2 ** L
        self.mid = nn.Sequential(UnetBlock((mid_in, *sizes[L]), mid_in, mid_out),
                                 UnetBlock((mid_out, *sizes[L]), mid_out, mid_out))
        self.pose_mid = _mlp(mid_in, mid_out)

        dec_in = [C * 2 ** (L - j) for j in range(L)]        # width after the concatenation at decoder level j
        dec_out = [C * 2 ** (L - 1 - j) for j in range(L)]
        self.temporal_attentions_de = nn.ModuleList(temporal(dec_in[j]) for j in range(L))
        self.pose_attn_de = nn.ModuleList(pose_attn(dec_in[j]) for j in range(L))
        self.upsamples = nn.ModuleList(nn.ConvTranspose2d(dec_in[j], dec_out[j], 2, 2) for j in range(L))
        self.pose_up = nn.ModuleList(Linear(dec_in[j], dec_out[j]) for j in range(L))
        self.decoders = nn.ModuleList(
            nn.Sequential(UnetBlock((dec_in[j], *sizes[L - 1 - j]), dec_in[j], dec_out[j]),
                          UnetBlock((dec_out[j], *sizes[L - 1 - j]), dec_out[j], dec_out[j]))
            for j in range(L))
        self.pose_de = nn.ModuleList(_mlp(dec_in[j], dec_out[j]) for j in range(L))
        self.conv_out = nn.Conv2d(C, n_codes, 3, 1, 1)
        self.pose_out = Linear(C, C)

    @staticmethod
    def _temporal(queries: Tensor, tokens: Tensor, layers: nn.ModuleList, b: int, f: int) -> Tensor:
        """Attention over frames at every spatial position. queries, tokens (B*F, C, h, w) with n = b*F + f ->
        updated queries (B*F, C, h, w)."""
        _, c, h, w = queries.shape
        to_seq = lambda x: x.view(b, f, c, h, w).permute(0, 3, 4, 1, 2).reshape(b * h * w, f, c)
        q, t = to_seq(queries), to_seq(tokens)
        for layer in layers:
            q = layer(q, t)
        return q.view(b, h, w, f, c).permute(0, 3, 4, 1, 2).reshape(b * f, c, h, w)

    @staticmethod
    def _pose(pose_q: Tensor, pose_t: Tensor, queries: Tensor, layers: nn.ModuleList) -> Tensor:
        """Pose attention layers; queries (B*F, C, h, w) are the scene queries the pose attends to."""
        scene = queries.flatten(2).transpose(1, 2)  # (B*F, h*w, C), positions in (h, w) order
        for layer in layers:
            pose_q = layer(pose_q, pose_t, scene)
        return pose_q

    @staticmethod
    def _pad_to(x: Tensor, skip: Tensor) -> Tensor:
        """Zero-pad the upsampled map to the skip's size as released: the pad amounts come from the height
        difference and go onto the width axis, and the other way round (equal for square maps)."""
        dh, dw = skip.shape[2] - x.shape[2], skip.shape[3] - x.shape[3]
        if dh or dw:
            x = F.pad(x, (dh // 2, dh - dh // 2, dw // 2, dw - dw // 2))
        return x

    def forward(self, tokens: Tensor, pose_tokens: Tensor, query_tokens: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """`query_tokens` (B, F, C, h, w): what the scene queries start from instead of `tokens` (plan conditioning,
        model/plan.py; None = OccWorld: the same tokens)."""
        b, f, c, h, w = tokens.shape
        if f > self.num_frames - 1:
            raise ValueError(f"{f} frames exceed the transformer's capacity: num_frames={self.num_frames} temporal "
                             f"embeddings take at most {self.num_frames - 1} input frames")
        if (h, w) != self.level_sizes[0]:
            raise ValueError(f"token map {h}x{w} does not match the configured token_size {self.level_sizes[0]}")
        temb = self.temporal_embeddings.weight.to(tokens.dtype)
        ptemb = self.pose_temporal_embeddings.weight.to(pose_tokens.dtype)
        q_in = tokens if query_tokens is None else query_tokens
        queries = (q_in + temb[1:f + 1, :, None, None]).flatten(0, 1)     # (B*F, C, h, w), n = b*F + f
        tokens = (tokens + temb[:f, :, None, None]).flatten(0, 1)
        pose_q = pose_tokens + ptemb[1:f + 1]
        pose_t = pose_tokens + ptemb[:f]

        skips: list[tuple[Tensor, Tensor, Tensor, Tensor]] = []
        for i in range(self.num_layers):
            pose_q = self._pose(pose_q, pose_t, queries, self.pose_attn_en[i])
            pose_q, pose_t = self.pose_en[i](pose_q), self.pose_en[i](pose_t)
            queries = self._temporal(queries, tokens, self.temporal_attentions_en[i], b, f)
            queries, tokens = self.encoders[i](queries), self.encoders[i](tokens)
            skips.append((queries, tokens, pose_q, pose_t))
            queries, tokens = self.downsamples[i](queries), self.downsamples[i](tokens)
        queries, tokens = self.mid(queries), self.mid(tokens)
        pose_q, pose_t = self.pose_mid(pose_q), self.pose_mid(pose_t)
        for j in range(self.num_layers):
            skip_q, skip_t, skip_pq, skip_pt = skips.pop()
            up = self.upsamples[j]
            queries = torch.cat([self._pad_to(up(queries), skip_q), skip_q], dim=1)
            tokens = torch.cat([self._pad_to(up(tokens), skip_t), skip_t], dim=1)
            queries = self._temporal(queries, tokens, self.temporal_attentions_de[j], b, f)
            pose_q = torch.cat([self.pose_up[j](pose_q), skip_pq], dim=-1)
            pose_t = torch.cat([self.pose_up[j](pose_t), skip_pt], dim=-1)
            pose_q = self._pose(pose_q, pose_t, queries, self.pose_attn_de[j])
            pose_q, queries = self.pose_de[j](pose_q), self.decoders[j](queries)
            if j < self.num_layers - 1:  # the release also runs the last level's tokens streams; nothing reads them
                pose_t, tokens = self.pose_de[j](pose_t), self.decoders[j](tokens)
        logits = self.conv_out(queries)
        return logits.view(b, f, *logits.shape[1:]), self.pose_out(pose_q)
