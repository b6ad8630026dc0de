"""Pictures for TensorBoard: bird's-eye (top-down) and side views of label grids, ground truth vs forecast.

Uses `occworld_tokyo.reports.figures.bev_image` when that module provides it; otherwise the small views
here: BEV = label of the highest occupied voxel of each (x, y) column; side = label of the first occupied
voxel seen from the -y side for each (x, z). Images are uint8 (H, W, 3), x forward pointing up.
"""

from __future__ import annotations

import numpy as np

from occworld_tokyo.labels import FREE, palette


def topmost_labels(occ: np.ndarray, free: int = FREE) -> np.ndarray:
    """(X, Y, Z) labels -> (X, Y) label of the highest non-free voxel (free where the column is empty)."""
    occupied = occ != free
    z = occ.shape[2] - 1 - np.argmax(occupied[:, :, ::-1], axis=2)
    top = np.take_along_axis(occ, z[:, :, None], axis=2)[:, :, 0]
    return np.where(occupied.any(axis=2), top, free)


def first_along_y(occ: np.ndarray, free: int = FREE) -> np.ndarray:
    """(X, Y, Z) labels -> (X, Z) label of the first non-free voxel along +y (the side view)."""
    occupied = occ != free
    y = np.argmax(occupied, axis=1)
    first = np.take_along_axis(occ, y[:, None, :], axis=1)[:, 0, :]
    return np.where(occupied.any(axis=1), first, free)


def colorize(labels2d: np.ndarray) -> np.ndarray:
    return palette()[np.clip(labels2d, 0, len(palette()) - 1)]


def bev(occ: np.ndarray) -> np.ndarray:
    try:
        from occworld_tokyo.reports.figures import bev_image  # the report module's picture, when it exists
    except ImportError:
        bev_image = None
    if bev_image is not None:
        return np.asarray(bev_image(occ))
    return np.ascontiguousarray(colorize(topmost_labels(occ))[::-1, ::-1])  # x up, y left


def side(occ: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(colorize(first_along_y(occ)).transpose(1, 0, 2)[::-1])  # z up, x right


def comparison(gt: np.ndarray, pred: np.ndarray, view: str = "bev") -> np.ndarray:
    """Side-by-side image: ground truth | forecast, with a 2-pixel white separator."""
    f = bev if view == "bev" else side
    a, b = f(gt), f(pred)
    sep = np.full((a.shape[0], 2, 3), 255, np.uint8)
    return np.concatenate([a, sep, b], axis=1)
