"""Memory checks before work: estimate what a step needs and refuse, naming the flag or file and the fix, when the
machine cannot give it (instead of a MemoryError or the OOM killer after the work has started)."""

from __future__ import annotations

import os

from occworld_tokyo.errors import UserError


class NotEnoughMemoryError(UserError):
    """A step would need more memory than the machine can give."""


def available_bytes() -> int | None:
    """Memory the kernel can give without swapping (/proc/meminfo MemAvailable), else physical memory; None when
    unknown (then nothing is refused)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(need: float, what: str, fix: str) -> None:
    """NotEnoughMemoryError when `need` bytes exceed the available memory: '<what> needs about X GB but only Y GB
    is available; <fix>'."""
    have = available_bytes()
    if have is not None and need > have:
        raise NotEnoughMemoryError(f"{what} needs about {need / 1e9:.3g} GB of memory but only {have / 1e9:.3g} GB "
                                   f"is available; nothing was started. Fix: {fix}")
