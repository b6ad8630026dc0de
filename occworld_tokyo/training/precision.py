"""Numeric precision: fp16 autocast + GradScaler only on CUDA when `fp16.enabled`; on CPU fp32 or bf16.

fp16 on CPU has no benefit and GradScaler targets CUDA, so a config that enables fp16 runs the CPU in
`cpu_precision` ('fp32' default, or 'bf16' autocast) and says so in the log.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Precision:
    device_type: str
    dtype: torch.dtype | None  # autocast dtype, None = plain fp32
    use_scaler: bool
    note: str

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=self.dtype)

    def make_scaler(self, init_scale: float = 2.0 ** 16) -> torch.amp.GradScaler | None:
        return torch.amp.GradScaler("cuda", init_scale=init_scale) if self.use_scaler else None


def choose_precision(cfg: dict, device: torch.device) -> Precision:
    fp16 = bool(cfg["fp16"]["enabled"])
    if device.type == "cuda":
        if fp16:
            return Precision("cuda", torch.float16, True, "fp16 autocast with dynamic GradScaler (CUDA)")
        return Precision("cuda", None, False, "fp32 (fp16.enabled=False)")
    cpu = cfg["cpu_precision"]
    why = " (fp16.enabled applies to CUDA only)" if fp16 else ""
    if cpu == "bf16":
        return Precision("cpu", torch.bfloat16, False, f"bf16 autocast on CPU{why}")
    return Precision("cpu", None, False, f"fp32 on CPU{why}")
