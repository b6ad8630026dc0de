"""Stage 2 with a frozen tokenizer: each training frame's codes are computed once, not once per window.

A window of H + F frames is tokenized every step, and each frame sits in up to H + F windows per epoch, so on a CPU
most of a stage-2 step is the frozen tokenizer re-encoding frames it has seen. `FrameCodes` keeps the code indices
(h, w) of every (session part, frame) of the training set the first time it meets them (encoded from the batch's
own occupancy, under no_grad, in eval mode: the same codes `vae.encode` gives); later windows look them up.
`TransVQVAE.forward_train(occ, poses, codes=...)` then reads the tokens from the codebook (the exact rows the
straight-through latents equal). Memory: h * w int16 per frame (2 KB at 32 x 32; 25 MB for 5,000 frames at 50 x 50).
The cache belongs to one training run (an attribute of its stage object), is rebuilt after a resume and never
written to disk.
"""

from __future__ import annotations

import torch
from torch import Tensor


class FrameCodes:
    """Code indices per (part, frame) of one training dataset, filled on first use."""

    def __init__(self, vae: torch.nn.Module):
        self.vae = vae
        self._codes: dict[tuple[int, int], Tensor] = {}
        self.encoded = 0  # frames encoded so far (the rest were looked up)

    def __len__(self) -> int:
        return len(self._codes)

    @torch.no_grad()
    def lookup(self, occ: Tensor, index: Tensor) -> Tensor:
        """occ (B, F, X, Y, Z) labels of windows starting at index (B, 2) = (part, first frame) -> codes (B, F, h, w)
        int64 on occ's device."""
        b, f = occ.shape[:2]
        keys = [(int(p), int(s) + k) for p, s in index.tolist() for k in range(f)]
        missing = sorted({key for key in keys if key not in self._codes})
        if missing:
            where = {key: i for i, key in enumerate(keys)}
            frames = torch.stack([occ.flatten(0, 1)[where[key]] for key in missing])
            was_training = self.vae.training
            self.vae.eval()
            _, codes = self.vae.encode(frames[None])
            self.vae.train(was_training)
            for key, c in zip(missing, codes[0]):
                self._codes[key] = c.to("cpu", torch.int16)
            self.encoded += len(missing)
        codes = torch.stack([self._codes[key] for key in keys])  # (B*F, h, w)
        return codes.to(occ.device, torch.long).view(b, f, *codes.shape[1:])
