"""Pictures of occupancy grids for reports and TensorBoard: bird's-eye view, side view, comparisons, GIFs.

Conventions (grids are (X, Y, Z) storage labels, X forward, Y left, Z up):
- `bev_image`: looking down; X forward is drawn up and Y left is drawn left, so image[r, c] shows column
  (X-1-r, Y-1-c). Each pixel is the colour (labels.palette()) of the top-most occupied voxel of its column,
  darkened for low voxels (brightness 0.45 at the bottom level .. 1.0 at the top of the occupied range);
  empty columns are the background colour.
- `side_view`: looking from the agent's right side (-Y) towards +Y; X forward is drawn to the right, Z up is
  drawn up; each pixel shows the nearest occupied voxel along +Y, darkened with depth. Rows are repeated
  `z_scale` times (default 3 ~ 1.25 m / 0.4 m) so that metres look the same both ways.
Both use an argmax over a boolean mask along one axis, a few ms for 200 x 200 x 121.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image, ImageDraw

from ..labels import palette
from ..evaluation.arrays import to_numpy

BACKGROUND = (245, 245, 245)


def _colours(labels: np.ndarray, shade: np.ndarray, has: np.ndarray) -> np.ndarray:
    pal = palette().astype(np.float32)
    lab = np.clip(labels, 0, len(pal) - 1)
    rgb = pal[lab] * shade[..., None]
    rgb[~has] = BACKGROUND
    return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)


def top_surface(occ: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(label, level, has_any) of the top-most occupied voxel of every (x, y) column."""
    occ = to_numpy(occ)
    nz = occ.shape[2]
    occupied = occ != 0
    k_from_top = np.argmax(occupied[:, :, ::-1], axis=2)
    level = nz - 1 - k_from_top
    has = occupied.any(axis=2)
    label = np.take_along_axis(occ, level[:, :, None], axis=2)[:, :, 0]
    return label, level, has


def bev_image(occ: Any) -> np.ndarray:
    """(X, Y, Z) labels -> (X, Y, 3) uint8 RGB top view, X forward drawn up, Y left drawn left."""
    occ = to_numpy(occ)
    label, level, has = top_surface(occ)
    top = max(int(level[has].max()) if has.any() else 1, 1)
    shade = 0.45 + 0.55 * np.clip(level / top, 0.0, 1.0)
    img = _colours(label, shade, has)
    return np.ascontiguousarray(img[::-1, ::-1])


def side_view(occ: Any, z_scale: int = 3) -> np.ndarray:
    """(X, Y, Z) labels -> (Z * z_scale, X, 3) uint8 RGB seen from the right, X drawn right, Z up."""
    occ = to_numpy(occ)
    ny = occ.shape[1]
    occupied = occ != 0
    depth = np.argmax(occupied, axis=1)  # (X, Z) first occupied y index from the right (-Y) side
    has = occupied.any(axis=1)
    label = np.take_along_axis(occ, depth[:, None, :], axis=1)[:, 0, :]
    shade = 1.0 - 0.55 * depth / max(ny - 1, 1)
    img = _colours(label, shade, has)  # (X, Z, 3)
    img = np.transpose(img, (1, 0, 2))[::-1]  # (Z, X): top row = highest level
    return np.ascontiguousarray(np.repeat(img, max(1, int(z_scale)), axis=0))


def comparison_image(gt_seq: Any, pred_seq: Any, view: str = "bev", pad: int = 4,
                     titles: Sequence[str] | None = None, label_h: int = 14) -> np.ndarray:
    """Grid picture: row 0 ground truth, row 1 forecast, one column per future step; (H, W, 3) uint8."""
    gt_seq, pred_seq = to_numpy(gt_seq), to_numpy(pred_seq)
    if gt_seq.shape != pred_seq.shape or gt_seq.ndim != 4:
        raise ValueError(f"gt_seq {gt_seq.shape} and pred_seq {pred_seq.shape} must both be (T, X, Y, Z)")
    render = bev_image if view == "bev" else side_view
    tiles = [[render(seq[t]) for t in range(seq.shape[0])] for seq in (gt_seq, pred_seq)]
    th, tw = tiles[0][0].shape[:2]
    n_t = gt_seq.shape[0]
    left = 70
    width = left + n_t * tw + (n_t + 1) * pad
    height = label_h + 2 * th + 3 * pad
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    titles = list(titles) if titles is not None else [f"t+{t + 1}" for t in range(n_t)]
    for t in range(n_t):
        x = left + pad + t * (tw + pad)
        draw.text((x + 2, 1), titles[t], fill=(0, 0, 0))
        for r in range(2):
            y = label_h + pad + r * (th + pad)
            canvas.paste(Image.fromarray(tiles[r][t]), (x, y))
    for r, name in enumerate(("ground truth", "forecast")):
        draw.text((4, label_h + pad + r * (th + pad) + th // 2 - 6), name, fill=(0, 0, 0))
    return np.asarray(canvas)


def comparison_figure(gt_seq: Any, pred_seq: Any, path: str | Path, view: str = "bev",
                      titles: Sequence[str] | None = None) -> Path:
    """Write the ground truth vs forecast comparison (see `comparison_image`) as a PNG; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(comparison_image(gt_seq, pred_seq, view=view, titles=titles)).save(path)
    return path


def side_by_side(gt: Any, pred: Any, pad: int = 4, view: str = "bev") -> np.ndarray:
    """Ground truth left, forecast right (a GIF frame, a TensorBoard image); view "bev" or "side"."""
    render = bev_image if view == "bev" else side_view
    a, b = render(gt), render(pred)
    out = np.full((a.shape[0], a.shape[1] + pad + b.shape[1], 3), 255, np.uint8)
    out[:, : a.shape[1]] = a
    out[:, a.shape[1] + pad:] = b
    return out


def write_gif(frames: Sequence[np.ndarray], path: str | Path, fps: float = 2.0) -> Path:
    """Animated GIF (looping) of (H, W, 3) uint8 frames at `fps`; returns the path.

    Pillow merges identical consecutive frames into one with their summed duration (timing is kept).
    """
    if len(frames) == 0:
        raise ValueError("no frames to write")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images = [Image.fromarray(np.asarray(f, dtype=np.uint8)) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(round(1000.0 / fps)), loop=0,
                   optimize=False, disposal=2)
    return path
