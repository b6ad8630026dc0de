"""Report pictures: orientation, colours, file sizes."""

from __future__ import annotations

import numpy as np
from PIL import Image

from occworld_tokyo.labels import BUILDING, ROAD, VEHICLE, palette
from occworld_tokyo.reports.figures import (
    BACKGROUND, bev_image, comparison_figure, side_by_side, side_view, write_gif,
)

SHAPE = (200, 200, 121)


def scene() -> np.ndarray:
    occ = np.zeros(SHAPE, np.uint8)
    occ[..., 1] = ROAD
    occ[180:190, 150:160, 1:40] = BUILDING    # far ahead (x high), on the left (y high)
    occ[100:110, 20:24, 2:3] = VEHICLE        # beside the agent, on the right (y low)
    return occ


def test_bev_orientation_and_top_colour():
    img = bev_image(scene())
    assert img.shape == (200, 200, 3) and img.dtype == np.uint8
    pal = palette()
    # building: ahead -> near the top rows; left -> left columns; top of a tall column -> full brightness
    assert np.array_equal(img[200 - 1 - 185, 200 - 1 - 155], pal[BUILDING])
    # vehicle on the right side -> right half of the image, darker than full colour
    px = img[200 - 1 - 105, 200 - 1 - 22]
    assert px[2] > px[0] and px[2] < pal[VEHICLE][2]
    empty = bev_image(np.zeros(SHAPE, np.uint8))
    assert (empty == np.array(BACKGROUND, np.uint8)).all()


def test_side_view_orientation():
    img = side_view(scene(), z_scale=3)
    assert img.shape == (121 * 3, 200, 3)
    pal = palette()
    # building top level 39 -> image row (120 - 39) * 3, x index 185 -> column 185 (forward drawn right)
    building_px = img[(120 - 39) * 3, 185]
    assert building_px[0] > building_px[2] and np.allclose(building_px / building_px.max(),
                                                           pal[BUILDING] / pal[BUILDING].max(), atol=0.03)
    assert (img[(120 - 39) * 3, 50] == np.array(BACKGROUND, np.uint8)).all()


def test_bev_is_repeatable():
    """The same scene draws the same picture (its speed is measured in benchmarks/bench_eval.py, not asserted:
    a wall-clock limit fails on a busy machine)."""
    occ = scene()
    first = bev_image(occ)
    assert first.dtype == np.uint8 and first.shape[:2] == occ.shape[:2] and np.array_equal(bev_image(occ), first)


def test_comparison_figure_and_gif(tmp_path):
    gt = np.stack([scene()] * 3)
    pred = gt.copy()
    pred[1:, 100:110, 20:24, 2] = 0
    path = comparison_figure(gt, pred, tmp_path / "cmp.png")
    with Image.open(path) as im:
        assert im.format == "PNG"
        assert im.size == (70 + 3 * 200 + 4 * 4, 14 + 2 * 200 + 3 * 4)
    for t in range(3):  # distinct frames (Pillow merges identical consecutive frames, adding their durations)
        pred[t, 10 * t:10 * t + 5, 60:70, 2] = VEHICLE
    frames = [side_by_side(gt[t], pred[t]) for t in range(3)]
    gif = write_gif(frames, tmp_path / "a.gif", fps=2)
    with Image.open(gif) as im:
        assert im.size == (404, 200) and im.n_frames == 3 and im.info["duration"] == 500
