"""OccWorld's scene tokenizer `VAERes2D`: semantic occupancy (X, Y, Z labels) <-> a 2-D map of codebook tokens.

Data flow for one frame (released nuScenes numbers in brackets, Tokyo in braces):

    labels (X, Y, Z)           [200x200x16]  {200x200x121}
    class_embeds gather        -> (X, Y, Z, 8)  (expansion 8; an index gather, never a float one-hot)
    fold height into channels  -> (Z*8, X, Y)   [128]  {968}
    Encoder2D                  -> (z_channels, h, w), h = X / 2**(len(ch_mult)-1)   [128x50x50] {64x50x50}
    vqvae.quant_conv (1x1)     -> (e_dim, h, w); nearest-L2 codebook lookup, straight-through estimator
    vqvae.post_quant_conv      -> (z_channels, h, w)
    Decoder2D                  -> (Z*8, X, Y) -> view (Z, 8, X, Y)
    dot with class_embeds      -> class logits (C, X, Y, Z)   (the embedding table is tied to the output)

Module and parameter names follow the released checkpoint (`encoder.down.2.attn.0.q.weight`, `vqvae.embedding`,
`class_embeds.weight`, ...), so `load_state_dict` on a released file works name for name.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .cpu_ops import Embedding, attention, linear
from .losses import lovasz_softmax, occupancy_ce


def Normalize(channels: int) -> nn.GroupNorm:
    """The released rule: GroupNorm with channels // 4 groups up to 32 channels, 32 groups above (eps 1e-6).
    At the released widths (>= 64) every norm has 32 groups; narrower tokenizers (tests, CPU configs) use fewer."""
    groups = channels // 4 if channels <= 32 else 32
    if groups < 1 or channels % groups:
        raise ValueError(f"GroupNorm: {channels} channels cannot be split into {groups} groups (released rule: "
                         f"channels // 4 groups up to 32 channels, else 32); choose ch as a multiple of 4 (>= 4), "
                         f"and of 32 above 32")
    return nn.GroupNorm(num_groups=groups, num_channels=channels, eps=1e-6, affine=True)


def swish(x: Tensor) -> Tensor:
    return F.silu(x)


class ResnetBlock(nn.Module):
    """GroupNorm-swish-conv twice, with a 1x1 `nin_shortcut` when the width changes."""

    def __init__(self, in_channels: int, out_channels: int, dropout: float = 0.0):
        super().__init__()
        self.norm1 = Normalize(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, 1, 1)
        self.norm2 = Normalize(out_channels)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1)
        if in_channels != out_channels:
            self.nin_shortcut = nn.Conv2d(in_channels, out_channels, 1, 1, 0)

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(swish(self.norm1(x)))
        h = self.conv2(self.dropout(swish(self.norm2(h))))
        if hasattr(self, "nin_shortcut"):
            x = self.nin_shortcut(x)
        return x + h


class AttnBlock(nn.Module):
    """Single-head spatial self-attention over all h*w positions (1x1-conv q, k, v, proj_out)."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = Normalize(channels)
        self.q = nn.Conv2d(channels, channels, 1)
        self.k = nn.Conv2d(channels, channels, 1)
        self.v = nn.Conv2d(channels, channels, 1)
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        y = self.norm(x)
        q, k, v = (m(y).reshape(n, c, h * w).transpose(1, 2) for m in (self.q, self.k, self.v))
        out = attention(q, k, v)  # (n, hw, c)
        out = out.transpose(1, 2).reshape(n, c, h, w)
        return x + self.proj_out(out)


class Downsample(nn.Module):
    """3x3 conv with stride 2 and zero padding 1 on every side (as released: the taming-style asymmetric
    (0, 1, 0, 1) pad is commented out there). s -> ceil(s / 2): 200 -> 100 -> 50."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, 2, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


# Nearest x2 upsampling then a 3x3 conv (padding 1) is a stride-2 transposed conv with a 4x4 kernel (padding 1):
# output row 2i+a reads upsampled rows 2i+a-1..2i+a+1 = low-res rows (i-1, i, i) for a = 0 and (i, i, i+1) for
# a = 1, and the transposed conv's tap k = y + 1 - 2r (y the output row, r the low-res row) collects, per tap,
# these kernel rows: tap 0 <- row 2, tap 1 <- rows 1+2, tap 2 <- rows 0+1, tap 3 <- row 0. Same for columns.
_UPSAMPLE_TAPS = torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])


class Upsample(nn.Module):
    """Nearest x2 upsampling, zero-padded (or cropped) to `shape` = the size the encoder had before the matching
    Downsample (left/top get diff // 2, as released; a no-op when sizes halve exactly), then a 3x3 conv.

    When the sizes double exactly, upsampling and conv are one stride-2 transposed conv over the low-resolution
    map with the 3x3 kernel's rows and columns summed into 4x4 taps (`_UPSAMPLE_TAPS`): the same result to float
    rounding with 16 instead of 36 multiply-adds per low-res pixel and channel pair (2x faster forward + backward
    on CPU at the released widths)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, 1, 1)

    def forward(self, x: Tensor, shape: Sequence[int]) -> Tensor:
        h, w = x.shape[-2:]
        if tuple(shape) == (2 * h, 2 * w):
            return self._transposed(x)
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        dy, dx = shape[0] - x.shape[2], shape[1] - x.shape[3]
        if dy or dx:
            x = F.pad(x, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
        return self.conv(x)

    def _transposed(self, x: Tensor) -> Tensor:
        taps = _UPSAMPLE_TAPS.to(self.conv.weight)
        kernel = torch.einsum("pk,oikl,ql->iopq", taps, self.conv.weight, taps)   # (cin, cout, 4, 4)
        return F.conv_transpose2d(x, kernel, self.conv.bias, stride=2, padding=1)


def level_shapes(height: int, width: int, levels: int) -> list[tuple[int, int]]:
    """Feature-map sizes (h, w) of the tokenizer's levels 0..levels-1 (each Downsample maps s -> ceil(s / 2));
    the last entry is the token map."""
    shapes = [(int(height), int(width))]
    for _ in range(levels - 1):
        h, w = shapes[-1]
        shapes.append(((h + 1) // 2, (w + 1) // 2))
    return shapes


class Encoder2D(nn.Module):
    """conv_in -> per level [ResnetBlock x num_res_blocks (+ AttnBlock at attn_resolutions), Downsample]
    -> mid (Res, Attn, Res) -> GroupNorm, swish, conv_out to z_channels."""

    def __init__(self, in_channels: int, ch: int, ch_mult: Sequence[int], num_res_blocks: int,
                 attn_resolutions: Sequence[int], resolution: int, z_channels: int, dropout: float = 0.0):
        super().__init__()
        self.num_resolutions = len(ch_mult)
        self.conv_in = nn.Conv2d(in_channels, ch, 3, 1, 1)
        in_mult = (1, *ch_mult)
        curr_res = resolution
        self.down = nn.ModuleList()
        block_in = ch
        for i_level in range(self.num_resolutions):
            block_in, block_out = ch * in_mult[i_level], ch * ch_mult[i_level]
            level = nn.Module()
            level.block = nn.ModuleList()
            level.attn = nn.ModuleList()
            for _ in range(num_res_blocks):
                level.block.append(ResnetBlock(block_in, block_out, dropout))
                block_in = block_out
                if curr_res in attn_resolutions:
                    level.attn.append(AttnBlock(block_in))
            if i_level != self.num_resolutions - 1:
                level.downsample = Downsample(block_in)
                curr_res = curr_res // 2
            self.down.append(level)
        self.mid = nn.Module()
        self.mid.block_1 = ResnetBlock(block_in, block_in, dropout)
        self.mid.attn_1 = AttnBlock(block_in)
        self.mid.block_2 = ResnetBlock(block_in, block_in, dropout)
        self.norm_out = Normalize(block_in)
        self.conv_out = nn.Conv2d(block_in, z_channels, 3, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv_in(x)
        for level in self.down:
            for i, block in enumerate(level.block):
                h = block(h)
                if len(level.attn) > 0:
                    h = level.attn[i](h)
            if hasattr(level, "downsample"):
                h = level.downsample(h)
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(h)))
        return self.conv_out(swish(self.norm_out(h)))


class Decoder2D(nn.Module):
    """Mirror of Encoder2D: conv_in -> mid -> per level (lowest resolution first) [ResnetBlock x num_res_blocks
    (+ AttnBlock), Upsample] -> GroupNorm, swish, conv_out to out_channels (= Z * expansion)."""

    def __init__(self, out_channels: int, ch: int, ch_mult: Sequence[int], num_res_blocks: int,
                 attn_resolutions: Sequence[int], resolution: int, z_channels: int, dropout: float = 0.0):
        super().__init__()
        self.num_resolutions = len(ch_mult)
        block_in = ch * ch_mult[-1]
        curr_res = resolution // 2 ** (self.num_resolutions - 1)
        self.conv_in = nn.Conv2d(z_channels, block_in, 3, 1, 1)
        self.mid = nn.Module()
        self.mid.block_1 = ResnetBlock(block_in, block_in, dropout)
        self.mid.attn_1 = AttnBlock(block_in)
        self.mid.block_2 = ResnetBlock(block_in, block_in, dropout)
        levels: list[nn.Module] = []
        for i_level in reversed(range(self.num_resolutions)):
            block_out = ch * ch_mult[i_level]
            level = nn.Module()
            level.block = nn.ModuleList()
            level.attn = nn.ModuleList()
            for _ in range(num_res_blocks):
                level.block.append(ResnetBlock(block_in, block_out, dropout))
                block_in = block_out
                if curr_res in attn_resolutions:
                    level.attn.append(AttnBlock(block_in))
            if i_level != 0:
                level.upsample = Upsample(block_in)
                curr_res = curr_res * 2
            levels.insert(0, level)  # up[0] is the full-resolution level, as in the checkpoint
        self.up = nn.ModuleList(levels)
        self.norm_out = Normalize(block_in)
        self.conv_out = nn.Conv2d(block_in, out_channels, 3, 1, 1)

    def forward(self, z: Tensor, shapes: Sequence[tuple[int, int]]) -> Tensor:
        """z (N, z_channels, h, w); `shapes` = the encoder's level sizes (see `level_shapes`): level l's
        Upsample pads to shapes[l - 1]."""
        h = self.conv_in(z)
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(h)))
        for i_level in reversed(range(self.num_resolutions)):
            level = self.up[i_level]
            for i, block in enumerate(level.block):
                h = block(h)
                if len(level.attn) > 0:
                    h = level.attn[i](h)
            if hasattr(level, "upsample"):
                h = level.upsample(h, shapes[i_level - 1])
        return self.conv_out(swish(self.norm_out(h)))


class VectorQuantizer(nn.Module):
    """Codebook `embedding` (n_e x e_dim) with 1x1 `quant_conv` / `post_quant_conv` around it.

    Nearest-L2 lookup with the released distance ||z||^2 + ||e||^2 - 2 z.e; straight-through z_q = z + sg[z_q - z]
    (what the decoder and the world model receive). The lookup runs in fp32 under autocast. The embed loss is the
    released one: `legacy=True` (the release's default) gives mean((sg[z_q] - z)^2) + beta * mean((z_q - sg[z])^2),
    i.e. beta weighs the codebook term; `legacy=False` puts beta on the commitment term (VQ-VAE's "commitment beta",
    what the guide's commitment=0.25 means).

    Dead-code restart (off unless `track_usage`; not in OccWorld): while training, `code_counts` sums how often
    each code is chosen and `last_inputs` keeps the latest batch's encoder vectors; `restart_dead_codes()` moves
    the rarely chosen codes onto some of those vectors (Jukebox / SoundStream practice against codebook collapse).
    Both are plain attributes, not buffers: the state_dict keeps the released checkpoint's names exactly, and
    DistributedDataParallel (which re-broadcasts buffers from rank 0 at every forward) leaves each process's
    counts its own, to be summed at restart time.
    """

    def __init__(self, n_e: int, e_dim: int, z_channels: int, beta: float, track_usage: bool = False,
                 legacy: bool = True):
        super().__init__()
        self.n_e, self.e_dim, self.beta, self.legacy = n_e, e_dim, beta, bool(legacy)
        self.embedding = nn.Embedding(n_e, e_dim)
        self.embedding.weight.data.uniform_(-1.0 / n_e, 1.0 / n_e)
        self.quant_conv = nn.Conv2d(z_channels, e_dim, 1)
        self.post_quant_conv = nn.Conv2d(e_dim, z_channels, 1)
        self.track_usage = track_usage
        self.code_counts = torch.zeros(n_e, dtype=torch.float64)  # on the codebook's device once counting starts
        self.last_inputs: Tensor | None = None

    def counts(self) -> Tensor:
        """`code_counts`, moved to the codebook's device first if it is elsewhere (the module was moved)."""
        device = self.embedding.weight.device
        if self.code_counts.device != device:
            self.code_counts = self.code_counts.to(device)
        return self.code_counts

    def quantize(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """z (N, e_dim, h, w) after quant_conv -> (z_q straight-through, embed loss, indices (N, h, w))."""
        with torch.autocast(device_type=z.device.type, enabled=False):
            z = z.float()
            flat = z.permute(0, 2, 3, 1).reshape(-1, self.e_dim)
            codebook = self.embedding.weight.float()
            dist = self.distances(flat, codebook)
            indices = dist.argmin(dim=1)
            if self.track_usage and self.training and torch.is_grad_enabled():
                self.counts().add_(torch.bincount(indices, minlength=self.n_e).to(torch.float64))
                self.last_inputs = flat.detach()
            z_q = codebook[indices].view(z.shape[0], z.shape[2], z.shape[3], self.e_dim).permute(0, 3, 1, 2)
            commitment, codebook_term = F.mse_loss(z, z_q.detach()), F.mse_loss(z_q, z.detach())
            if self.legacy:
                loss = commitment + self.beta * codebook_term
            else:
                loss = self.beta * commitment + codebook_term
            z_q = z + (z_q - z).detach()
        return z_q, loss, indices.view(z.shape[0], z.shape[2], z.shape[3])

    @staticmethod
    def distances(flat: Tensor, codebook: Tensor) -> Tensor:
        """Squared L2 distances (P, n_e) between rows of `flat` (P, e_dim) and the codebook (n_e, e_dim), in the
        release's order of operations: ||z||^2 + ||e||^2 - 2 z.e."""
        return flat.pow(2).sum(1, keepdim=True) + codebook.pow(2).sum(1) - 2.0 * (flat @ codebook.t())

    def lookup(self, indices: Tensor) -> Tensor:
        """Code indices (N, h, w) -> codebook vectors (N, e_dim, h, w)."""
        return self.embedding(indices).permute(0, 3, 1, 2).contiguous()

    def dead_codes(self, min_share: float) -> Tensor:
        """Indices of the codes chosen fewer than `min_share` x the uniform share (total / n_e) of times since
        the counts were last reset. Empty before any counted step."""
        counts = self.counts()
        total = float(counts.sum())
        if total <= 0:
            return torch.zeros(0, dtype=torch.long, device=counts.device)
        return torch.nonzero(counts < min_share * total / self.n_e).flatten()

    @torch.no_grad()
    def restart_dead_codes(self, min_share: float, generator: torch.Generator) -> int:
        """Move every dead code (see `dead_codes`) onto a random vector of the latest training batch (distinct
        vectors while there are enough, else repeats with 1 % noise), then reset the counts. Returns how many
        codes moved. Draws from `generator` (a CPU generator) so that runs and resumed runs repeat exactly."""
        dead = self.dead_codes(min_share)
        n = int(dead.numel())
        if n and self.last_inputs is not None and self.last_inputs.shape[0] > 0:
            pool = self.last_inputs
            if pool.shape[0] >= n:
                pick = torch.randperm(pool.shape[0], generator=generator)[:n]
                new = pool[pick.to(pool.device)]
            else:
                pick = torch.randint(pool.shape[0], (n,), generator=generator)
                noise = torch.randn((n, self.e_dim), generator=generator).to(pool.device)
                new = pool[pick.to(pool.device)]
                new = new + 0.01 * new.std() * noise
            self.embedding.weight.data[dead] = new.to(self.embedding.weight.dtype)
        else:
            n = 0
        self.counts().zero_()
        return n


def codebook_usage(indices: Tensor | None, n_e: int, counts: Tensor | None = None) -> dict[str, float]:
    """How a codebook is used: {'codes_used': distinct codes, 'code_perplexity': exp(entropy) of the usage
    histogram (n_e when uniform, 1 when one code takes all)}, from code `indices` or a ready `counts` histogram."""
    if counts is None:
        counts = torch.bincount(indices.flatten().long(), minlength=n_e)
    counts = counts.double()
    p = counts[counts > 0] / counts.sum()
    return {"codes_used": float((counts > 0).sum()), "code_perplexity": float(torch.exp(-(p * p.log()).sum()))}


def _restart_spec(cfg: dict | None) -> dict | None:
    """`dead_code_restart=dict(every=N, min_share=s)` -> checked dict, or None (off, as OccWorld)."""
    if not cfg:
        return None
    unknown = set(cfg) - {"every", "min_share"}
    if unknown:
        raise TypeError(f"VAERes2D: dead_code_restart has unknown keys {sorted(unknown)} (known: every, min_share)")
    every, min_share = int(cfg.get("every", 0)), float(cfg.get("min_share", 0.03))
    if every <= 0:
        return None
    if not 0.0 < min_share < 1.0:
        raise ValueError(f"VAERes2D: dead_code_restart.min_share must be in (0, 1) (got {min_share})")
    return {"every": every, "min_share": min_share}


class VAERes2D(nn.Module):
    """The scene tokenizer. Build from the `vae` dict of a model config (see config/_base_/model_tokyo.py).

    Attributes: grid_size (X, Y, Z), num_classes, free_index, token_size (h, w), tokenizer_grid (None until the
    tokenizer is trained or loaded for this grid; see checkpoint.check_tokenizer_trained).
    """

    def __init__(self, grid_size: Sequence[int] = (200, 200, 16), num_classes: int = 18, free_index: int = 17,
                 expansion: int = 8, ch: int = 64, ch_mult: Sequence[int] = (1, 2, 4), num_res_blocks: int = 2,
                 attn_resolutions: Sequence[int] = (50,), dropout: float = 0.0, z_channels: int = 128,
                 n_e: int = 512, e_dim: int = 128, beta: float = 1.0, legacy: bool = True,
                 loss_weights: dict | None = None, lovasz_classes: str = "present",
                 dead_code_restart: dict | None = None, class_weights: Sequence[float] | None = None, **unused):
        super().__init__()
        if unused:
            raise TypeError(f"VAERes2D: unknown config keys {sorted(unused)}")
        self.grid_size = tuple(int(s) for s in grid_size)
        X, Y, Z = self.grid_size
        if X != Y:
            raise ValueError(f"VAERes2D: grid {X}x{Y} must be square (the world model's U-Net pads square maps)")
        self.num_classes, self.free_index, self.expansion = int(num_classes), int(free_index), int(expansion)
        self.level_shapes = level_shapes(X, Y, len(ch_mult))
        self.token_size = self.level_shapes[-1]
        self.e_dim, self.n_e = int(e_dim), int(n_e)
        self.loss_weights = {"ce": 10.0, "lovasz": 1.0, "embed": 1.0, **(loss_weights or {})}
        self.lovasz_classes = lovasz_classes
        if class_weights is not None and (len(class_weights) != num_classes or min(class_weights) <= 0):
            raise ValueError(f"VAERes2D: class_weights needs {num_classes} positive numbers, one per class id "
                             f"(got {list(class_weights)})")
        # not in OccWorld: per-class weights of the reconstruction CE (rare movers; None = unweighted, as released).
        # Not saved in checkpoints (a setting, not a parameter): the config holds it.
        self.register_buffer("class_weights", None if class_weights is None else
                             torch.tensor([float(w) for w in class_weights]), persistent=False)
        self.tokenizer_grid: tuple[int, int, int, int] | None = None

        self.class_embeds = Embedding(num_classes, expansion)
        self.encoder = Encoder2D(Z * expansion, ch, ch_mult, num_res_blocks, attn_resolutions, X, z_channels, dropout)
        self.decoder = Decoder2D(Z * expansion, ch, ch_mult, num_res_blocks, attn_resolutions, X, z_channels, dropout)
        self.dead_code_restart = _restart_spec(dead_code_restart)
        self.vqvae = VectorQuantizer(n_e, e_dim, z_channels, beta, track_usage=self.dead_code_restart is not None,
                                     legacy=legacy)

    # -- pieces --------------------------------------------------------------------------------------------
    def grid_signature(self) -> tuple[int, int, int, int]:
        """(X, Y, Z, num_classes): what a trained tokenizer is trained for."""
        return (*self.grid_size, self.num_classes)

    def embed(self, occ: Tensor) -> Tensor:
        """Labels (N, X, Y, Z) -> (N, Z*expansion, X, Y) by gathering class embeddings (height folded into channels,
        channel c = z * expansion + e). The result is in channels_last memory (a permuted view of the gather, as
        in the release): the whole tokenizer then runs channels_last, which oneDNN's CPU convolutions and cuDNN's
        fp16 ones run faster."""
        n, x, y, z = occ.shape
        if (x, y, z) != self.grid_size:
            raise ValueError(f"occupancy grid {x}x{y}x{z} does not match the tokenizer's grid_size {self.grid_size}")
        emb = self.class_embeds(occ.long())  # (N, X, Y, Z, E)
        return emb.reshape(n, x, y, z * self.expansion).permute(0, 3, 1, 2)

    def logits_from_features(self, h: Tensor) -> Tensor:
        """Decoder output (N, Z*E, X, Y) -> class logits (N, C, X, Y, Z) via the tied class-embedding table: one
        (N*X*Y*Z, E) x (E, C) product on the channels_last features; the result is a permuted view (memory order
        N, X, Y, Z, C)."""
        n, _, x, y = h.shape
        feats = h.permute(0, 2, 3, 1).reshape(n, x, y, self.grid_size[2], self.expansion)
        logits = linear(feats, self.class_embeds.weight.to(h.dtype))   # (N, X, Y, Z, C)
        return logits.permute(0, 4, 1, 2, 3)

    def _encode(self, occ: Tensor, no_grad_chunk: int = 2) -> tuple[Tensor, Tensor, Tensor]:
        """occ (B, F, X, Y, Z) -> (z_q (B*F, e_dim, h, w) straight-through, embed loss, indices (B*F, h, w)).
        Without autograd (frozen tokenizer, inference) frames are encoded `no_grad_chunk` at a time, so the
        folded input (Z*8 x X x Y floats per frame, 155 MB for Tokyo) exists for a few frames only."""
        flat = occ.flatten(0, 1)
        if torch.is_grad_enabled() or flat.shape[0] <= no_grad_chunk:
            return self.vqvae.quantize(self.vqvae.quant_conv(self.encoder(self.embed(flat))))
        parts = [self.vqvae.quantize(self.vqvae.quant_conv(self.encoder(self.embed(flat[i:i + no_grad_chunk]))))
                 for i in range(0, flat.shape[0], no_grad_chunk)]
        sizes = torch.tensor([p[0].shape[0] for p in parts], dtype=torch.float32, device=parts[0][1].device)
        loss = (torch.stack([p[1] for p in parts]) * sizes).sum() / sizes.sum()
        return torch.cat([p[0] for p in parts]), loss, torch.cat([p[2] for p in parts])

    # -- API -----------------------------------------------------------------------------------------------
    def encode(self, occ: Tensor) -> tuple[Tensor, Tensor]:
        """occ (B, F, X, Y, Z) labels -> (quantized latents (B*F, e_dim, h, w) before post_quant_conv,
        code indices (B, F, h, w))."""
        b, f = occ.shape[:2]
        z_q, _, indices = self._encode(occ)
        return z_q, indices.view(b, f, *indices.shape[1:])

    def decode_latents(self, z_q: Tensor) -> Tensor:
        """Quantized latents (N, e_dim, h, w) -> class logits (N, C, X, Y, Z)."""
        return self.logits_from_features(self.decoder(self.vqvae.post_quant_conv(z_q), self.level_shapes))

    @torch.no_grad()
    def decode_indices(self, indices: Tensor, chunk: int = 1) -> Tensor:
        """Code indices (B, F, h, w) -> labels (B, F, X, Y, Z) (argmax), decoding `chunk` frames at a time so
        that only `chunk` frames of logits are alive at once."""
        b, f = indices.shape[:2]
        flat = indices.flatten(0, 1)
        out = []
        for i in range(0, flat.shape[0], chunk):
            logits = self.decode_latents(self.vqvae.lookup(flat[i:i + chunk]))
            out.append(logits.argmax(dim=1).to(torch.uint8 if self.num_classes <= 256 else torch.int64))
        return torch.cat(out).long().view(b, f, *self.grid_size)

    def forward_train(self, occ: Tensor) -> dict[str, Tensor]:
        """Reconstruction step. occ (B, F, X, Y, Z) label ids -> {'loss', 'ce', 'lovasz', 'embed_loss': scalars,
        'pred': (B, F, X, Y, Z) argmax labels (no grad), 'indices': (B, F, h, w) code indices}.
        loss = w_ce*CE + w_lovasz*Lovasz + w_embed*VQ."""
        b, f = occ.shape[:2]
        z_q, embed_loss, indices = self._encode(occ)
        logits = self.decode_latents(z_q)
        target = occ.flatten(0, 1).long()
        ce = occupancy_ce(logits, target, self.class_weights)
        lovasz = lovasz_softmax(logits, target, self.lovasz_classes)
        w = self.loss_weights
        loss = w["ce"] * ce + w["lovasz"] * lovasz + w["embed"] * embed_loss
        pred = logits.detach().argmax(dim=1).view(b, f, *self.grid_size)
        return {"loss": loss, "ce": ce.detach(), "lovasz": lovasz.detach(), "embed_loss": embed_loss.detach(),
                "pred": pred, "indices": indices.view(b, f, *indices.shape[1:])}

    def forward(self, occ: Tensor) -> dict[str, Tensor]:
        return self.forward_train(occ)
