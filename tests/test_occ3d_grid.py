"""`generate --grid occ3d`: the Occ3D slab (200x200x16, 0.4 m, -1.0..5.4 m) voxelized from the geometry at 0.4 m,
checked against the 1.25 m grid of the same frames (same seed: same trajectory and traffic)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from occworld_tokyo.grid import DEFAULT_GRID, OCC3D_GRID, GridSpec
from occworld_tokyo.sessions import layout
from occworld_tokyo.sessions.generate import GenerationSpec, generate_sessions
from occworld_tokyo.sessions.layout import GenerationError
from occworld_tokyo.sessions.validate import validate


@pytest.fixture(scope="module")
def both_grids(occ3d_data):
    return occ3d_data


def _frame(session, i):
    with np.load(layout.occupancy_path(session, i)) as npz:
        occ = npz["occupancy"]
    pose = json.loads(layout.pose_path(session, i).read_text())
    return occ, float(pose["ground_height"])


def test_occ3d_grid_spec():
    assert OCC3D_GRID.shape == (200, 200, 16)
    assert OCC3D_GRID.voxel_size == (0.4, 0.4, 0.4) and OCC3D_GRID.z_range == (-1.0, 5.4)
    assert GridSpec.from_dict(OCC3D_GRID.to_dict()) == OCC3D_GRID
    assert GridSpec.from_dict(DEFAULT_GRID.to_dict()) == DEFAULT_GRID
    with pytest.raises(GenerationError, match="--grid"):
        GenerationSpec(grid="nuscenes")


def test_occ3d_sessions_are_valid_and_record_their_grid(both_grids):
    checks, problems = validate(both_grids / "occ3d")
    assert not problems and all(not c.problems for c in checks), [c.problems for c in checks]
    for session in layout.find_sessions(both_grids / "occ3d"):
        meta = json.loads((session / "meta.json").read_text())
        assert GridSpec.from_dict(meta["grid"]) == OCC3D_GRID
        occ, _ = _frame(session, 0)
        assert occ.shape == (200, 200, 16) and occ.dtype == np.uint8


def test_rover_ground_is_level_2_of_the_slab(both_grids):
    """z = 0 of the occ3d ego frame is the ground: the road/terrain under a rover is in level 2 ([-0.2, 0.2) m)."""
    rover = [s for s in layout.find_sessions(both_grids / "occ3d") if s.name.startswith("rover")][0]
    occ, _ = _frame(rover, 0)
    centre = occ[95:105, 95:105]
    top = np.array([np.max(np.nonzero(c)[0]) if c.any() else -1 for c in centre.reshape(-1, 16)])
    assert (top == 2).mean() > 0.9, np.bincount(top + 1)


def test_same_columns_occupied_as_the_125m_grid(both_grids):
    """Per frame, in world heights: every column occupied in the 0.4 m slab is occupied in the 1.25 m levels that
    overlap the slab, and every column occupied in a 1.25 m level lying wholly inside the slab is occupied in
    the slab. Exact containment both ways (the slab is voxelized at 0.4 m, not resampled)."""
    pairs = zip(layout.find_sessions(both_grids / "default"), layout.find_sessions(both_grids / "occ3d"))
    checked = 0
    for fine_dir, occ3d_dir in pairs:
        assert fine_dir.name == occ3d_dir.name
        for i in range(8):
            coarse, gz_c = _frame(fine_dir, i)
            slab, gz_s = _frame(occ3d_dir, i)
            lo_s, hi_s = gz_s + OCC3D_GRID.z_range[0], gz_s + OCC3D_GRID.z_range[1]  # slab in world z
            z_lo = gz_c + DEFAULT_GRID.lower[2] + np.arange(121) * 1.25  # coarse levels in world z
            z_hi = z_lo + 1.25
            overlap = (z_hi > lo_s + 1e-6) & (z_lo < hi_s - 1e-6)
            inside = (z_lo >= lo_s - 1e-6) & (z_hi <= hi_s + 1e-6)
            slab_cols = (slab > 0).any(axis=2)
            assert slab_cols.any() and inside.any()
            assert not (slab_cols & ~(coarse[:, :, overlap] > 0).any(axis=2)).any()
            assert not ((coarse[:, :, inside] > 0).any(axis=2) & ~slab_cols).any()
            checked += 1
    assert checked == 16


def test_reuse_refuses_to_mix_grids(both_grids):
    spec = GenerationSpec(frames=8, sessions=2, sensors=True, seed=3, grid="default")
    with pytest.raises(GenerationError, match="grid.voxel_size"):
        generate_sessions(both_grids / "occ3d", spec=spec, progress=False)


def test_train_and_evaluate_on_occ3d_sessions(both_grids, tmp_path):
    """Both stages and the evaluation read the slab's sessions (the stored grid comes from meta.json): the tiny
    test configs on the central 12.8 m x 12.8 m x 6.4 m of the slab (32 x 32 x 16 voxels of 0.4 m)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    opts = ["data_root=" + str(both_grids / "occ3d"), "point_cloud_range=[-6.4,-6.4,-1.0,6.4,6.4,5.4]",
            "voxel_size=[0.4,0.4,0.4]", "max_epochs=1", "data.window_stride=2", "evaluation.max_samples=2"]
    env = {**os.environ, "OMP_NUM_THREADS": "2", "PYTHONPATH": str(root)}
    for config, work in (("config/tiny_test_vqvae.py", tmp_path / "tokenizer"), ("config/tiny_test_finetune.py", tmp_path)):
        proc = subprocess.run([sys.executable, "train.py", "--config", config, "--work-dir", str(work),
                               "--cfg-options", *opts], cwd=root, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "stored (200, 200, 16) -> selected (32, 32, 16)" in proc.stderr
    m = json.loads((tmp_path / "metrics" / "epoch_1.json").read_text())
    assert m["forecast"]["world_model"]["iou"][0] is not None and m["forecast"]["copy_last"]["iou"][0] is not None
    # the trained model's forecast on a slab session, and the viewer showing it beside the ground truth
    rover = [p for p in layout.find_sessions(both_grids / "occ3d") if p.name.startswith("rover")][0]
    from occworld_tokyo.cli import main as cli

    assert cli(["forecast", "--checkpoint", str(tmp_path / "best.pth"), "--session", str(rover), "--start", "1",
                "--out", str(tmp_path / "fc")]) == 0
    from rerun.chunk import RrdReader  # the viz extra: scripts/setup.sh installs it, CI runs this

    assert cli(["view", str(tmp_path / "fc"), "--save", str(tmp_path / "fc.rrd")]) == 0
    frames: dict[str, set] = {}
    for chunk in RrdReader(tmp_path / "fc.rrd").stream():
        batch = chunk.to_record_batch()
        if "frame" in batch.schema.names:
            frames.setdefault(chunk.entity_path, set()).update(batch.column("frame").to_pylist())
    assert frames["/forecast/ego/occupancy"] == {3, 4}  # history 2 (frames 1, 2), future 2
    assert frames["/ground_truth/ego/occupancy"] >= {1, 2, 3, 4}
