"""numpy views of metric inputs: the metrics and figures accept numpy arrays or torch tensors alike."""

from __future__ import annotations

from typing import Any

import numpy as np


def to_numpy(a: Any) -> Any:
    """A torch tensor (any device) or array-like -> numpy array; None stays None."""
    if a is None:
        return None
    if type(a).__module__.startswith("torch"):
        return a.detach().cpu().numpy()
    return np.asarray(a)
