"""Dataset tests on hand-written sessions in the generator's exact format (docs/data_format.md).

`write_session` is also used by the training tests: a flat terrain level, a static building block in the
world and a "vehicle" box that moves, seen from an agent that flies along a straight line with a chosen yaw.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from occworld_tokyo.config import ConfigError
from occworld_tokyo.dataset import (DataError, OccWindowDataset, ResumableSampler, find_sessions, make_loader,
                                    measure_loader, relative_poses, select_grid, split_sessions)
from occworld_tokyo.dataset.poses import pose_arrays
from occworld_tokyo.rotations import quat_yaw, yaw_quat
from occworld_tokyo.dataset.windows import SessionPart
from occworld_tokyo.grid import DEFAULT_GRID

SHAPE = (200, 200, 121)


def _xyz(v) -> dict:
    return {"x": float(v[0]), "y": float(v[1]), "z": float(v[2])}


def write_session(root: Path, name: str, n_frames: int = 12, agent: str = "drone", masks: bool = True,
                  speed: float = 4.0, yaw: float = 0.0, seed: int = 0, rate_hz: float = 2.0) -> Path:
    """One session folder: meta.json, occupancy/NNNNNN_occupancy.npz, poses/NNNNNN.json (no lidar/images)."""
    rng = np.random.default_rng(seed)
    path = Path(root) / name
    (path / "occupancy").mkdir(parents=True)
    (path / "poses").mkdir()
    heading = np.array([math.cos(yaw), math.sin(yaw), 0.0])
    building = rng.uniform(-10, 10, size=2)
    for i in range(n_frames):
        t = i / rate_hz
        pos = np.array([0.0, 0.0, 30.0]) + heading * speed * t
        occ = np.zeros(SHAPE, np.uint8)
        inst = np.zeros(SHAPE, np.int32)
        occ[:, :, 1] = 6  # terrain level
        c, s = math.cos(yaw), math.sin(yaw)
        for label, inst_id, (wx, wy), half, top in ((1, 7, building, 8, 12), (11, 9, building + [0, 6 + t], 3, 3)):
            dx, dy = wx - pos[0], wy - pos[1]
            ex, ey = c * dx + s * dy, -s * dx + c * dy  # world -> ego (yaw only)
            ix, iy = int((ex + 40) / 0.4), int((ey + 40) / 0.4)
            sl = (slice(max(0, ix - half), max(0, ix + half)), slice(max(0, iy - half), max(0, iy + half)),
                  slice(2, 2 + top))
            occ[sl] = label
            inst[sl] = inst_id
        arrays = {"occupancy": occ, "instances": inst}
        if masks:
            arrays["mask_lidar"] = np.ones(SHAPE, bool)
            cam = np.zeros(SHAPE, bool)
            cam[100:] = True
            arrays["mask_camera"] = cam
        np.savez_compressed(path / "occupancy" / f"{i:06d}_occupancy.npz", **arrays)
        q = yaw_quat(yaw)
        pose = {"timestamp": t, "frame": i, "agent_type": agent, "position": _xyz(pos),
                "orientation": {"x": q[0], "y": q[1], "z": q[2], "w": q[3]},
                "velocity": {"linear": _xyz(heading * speed), "angular": _xyz([0, 0, 0])},
                "ground_height": 0.0}
        (path / "poses" / f"{i:06d}.json").write_text(json.dumps(pose))
    meta = {"name": name, "agent_type": agent, "n_frames": n_frames, "rate_hz": rate_hz,
            "grid": DEFAULT_GRID.to_dict(), "labels": []}
    (path / "meta.json").write_text(json.dumps(meta))
    return path


def write_sessions(root: Path, n_sessions: int = 3, n_frames: int = 12, masks: bool = True) -> Path:
    for k in range(n_sessions):
        agent = ("drone", "rover")[k % 2]
        write_session(root, f"{agent}_20240101_1200{k:02d}", n_frames, agent, masks, yaw=0.3 * k, seed=k)
    return root


@pytest.fixture()
def data_root(tmp_path: Path) -> Path:
    return write_sessions(tmp_path / "data", 4, 10)


def test_only_folders_with_meta_are_sessions(data_root: Path, tmp_path: Path) -> None:
    (data_root / "drone_20240101_130000").mkdir()  # no meta.json: half written
    (data_root / "notes").mkdir()
    names = [s.name for s in find_sessions(data_root)]
    assert len(names) == 4 and "drone_20240101_130000" not in names
    with pytest.raises(DataError, match="generate data first"):
        find_sessions(tmp_path / "empty")


def test_split_is_by_session_deterministic_and_disjoint(data_root: Path) -> None:
    sessions = find_sessions(data_root)
    a = split_sessions(sessions, 0.5, seed=3, window=4)
    b = split_sessions(list(reversed(sessions)), 0.5, seed=3, window=4)
    train, val = {p.session.name for p in a.train}, {p.session.name for p in a.val}
    assert train.isdisjoint(val) and len(train | val) == 4 and len(val) == 2
    assert [p.session.name for p in a.val] == [p.session.name for p in b.val]
    assert {p.session.agent_type for p in a.val} == {"drone", "rover"}  # dealt across agent types


def test_single_session_splits_by_time_with_gap(tmp_path: Path) -> None:
    write_session(tmp_path, "drone_20240101_120000", n_frames=40)
    split = split_sessions(find_sessions(tmp_path), 0.25, seed=0, window=4)
    (tr,), (va,) = split.train, split.val
    assert "ONE session" in split.note and tr.stop + 4 == va.start and va.stop == 40
    ds_tr = OccWindowDataset(split.train, 2, 2, select_grid(DEFAULT_GRID.point_cloud_range, (0.4, 0.4, 1.25)))
    last_train_frame = max(s + 3 for _, s in ds_tr.starts)
    assert last_train_frame < va.start


def test_relative_poses_hand_computed() -> None:
    yaw = math.pi / 2  # facing north
    recs = [{"position": {"x": 10.0, "y": 5.0 + 2 * i, "z": 30.0 + i}, "orientation": dict(zip("xyzw", yaw_quat(yaw))),
             "velocity": {"linear": {"x": 0.0, "y": 4.0, "z": 0.0}, "angular": {"x": 0.0, "y": 0.0, "z": 0.1}},
             "ground_height": 0.0} for i in range(3)]
    p = relative_poses(pose_arrays(recs), current=1)
    np.testing.assert_allclose(p[1, :3], [0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(p[2, :3], [2, 0, 1], atol=1e-6)   # 2 m north = 2 m forward, 1 m up
    np.testing.assert_allclose(p[0, :3], [-2, 0, -1], atol=1e-6)
    np.testing.assert_allclose(p[:, 3:7], [[0, 0, 0, 1]] * 3, atol=1e-6)  # same yaw as the current frame
    np.testing.assert_allclose(p[:, 7:10], [[4, 0, 0]] * 3, atol=1e-6)   # velocity along the ego x axis
    np.testing.assert_allclose(p[:, 10:13], [[0, 0, 0.1]] * 3, atol=1e-6)
    assert abs(quat_yaw(yaw_quat(0.7)) - 0.7) < 1e-12


def test_windows_content_and_missing_masks(tmp_path: Path) -> None:
    root = write_sessions(tmp_path / "d", 2, 8, masks=False)
    sessions = find_sessions(root)
    assert not any(s.has_masks for s in sessions)
    parts = [SessionPart(s, 0, s.n_frames) for s in sessions]
    sel = select_grid([-40, -40, -2, 40, 40, 150], [0.4, 0.4, 1.25])
    ds = OccWindowDataset(parts, 3, 2, sel, with_instances=True, visibility="camera")
    assert len(ds) == 2 * (8 - 5 + 1)
    item = ds[1]
    raw = np.load(sessions[0].path / "occupancy" / "000003_occupancy.npz")["occupancy"]
    assert item["occ"].shape == (5, 200, 200, 121) and item["occ"].dtype == torch.uint8
    assert torch.equal(item["occ"][2], torch.from_numpy(raw))  # window 1 starts at frame 1: index 2 = frame 3
    assert item["visible"].all()  # no masks on disk: treated as all visible
    assert item["poses"].shape == (5, 13) and torch.allclose(item["poses"][2, :3], torch.zeros(3), atol=1e-5)
    assert item["instances"].dtype == torch.int32 and item["ego"].shape == (5, 5)


def test_grid_selection_and_pooling() -> None:
    assert select_grid([-40.0, -40.0, -2.0, 40.0, 40.0, 150.0], [0.4, 0.4, 1.25]).is_identity
    sel = select_grid([-20, -20, -2, 20, 20, 38], [0.8, 0.8, 2.5])
    assert sel.shape == (50, 50, 16) and sel.grid.shape == (50, 50, 16)
    occ = np.zeros(SHAPE, np.uint8)
    occ[51, 50, 1] = 12  # one pedestrian voxel inside the box survives pooling
    out = sel.apply(occ)
    assert out[0, 0, 0] == 12 and out.sum() == 12
    with pytest.raises(ConfigError, match="whole multiple"):
        select_grid([-20, -20, -2, 20, 20, 38], [0.5, 0.8, 1.25])
    with pytest.raises(ConfigError, match="lattice"):
        select_grid([-20.1, -20, -2, 20, 20, 38], [0.8, 0.8, 1.25])


def test_sampler_ranks_disjoint_and_resume_position() -> None:
    full = ResumableSampler(23, True, seed=5, rank=0, world_size=1, batch_size=4)
    full.set_epoch(2)
    order = full.indices()
    assert sorted(order) == list(range(23))
    resumed = ResumableSampler(23, True, seed=5, batch_size=4)
    resumed.set_epoch(2, start_batch=3)
    assert resumed.indices() == order[12:]
    other_epoch = ResumableSampler(23, True, seed=5, batch_size=4)
    other_epoch.set_epoch(3)
    assert other_epoch.indices() != order
    r0, r1 = (ResumableSampler(23, True, 5, rank=r, world_size=2, batch_size=4) for r in (0, 1))
    r0.set_epoch(2), r1.set_epoch(2)
    assert len(r0) == len(r1) == 12 and set(r0.indices()) | set(r1.indices()) == set(range(23))


def test_loader_throughput_is_measured(data_root: Path) -> None:
    parts = [SessionPart(s, 0, s.n_frames) for s in find_sessions(data_root)]
    ds = OccWindowDataset(parts, 4, 6, select_grid([-40, -40, -2, 40, 40, 150], [0.4, 0.4, 1.25]))
    stats = measure_loader(make_loader(ds, 1, 0, None), max_batches=2)
    assert stats["batches"] == 2 and stats["frames"] == 20 and stats["frames_per_s"] > 0
