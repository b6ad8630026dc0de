"""The exports as their consumers read them, checked against the consumers' published conventions:
UniOcc's own label ids and flow convention (its code: uniocc_viz.py, uniocc_eval.py, uniocc_flow_gen.py,
uniocc_utils.py; REFERENCE s10), and I2-World's flat info list (nuscenes_world_dataset.py, nuscenes_converter.py).
Expected flows are worked out by hand with explicit trigonometry, not with the export's helpers."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from occworld_tokyo import labels as L
from occworld_tokyo.cli import main as cli
from occworld_tokyo.export import frames as F
from occworld_tokyo.export.classes import LABEL_TO_UNIOCC, UNIOCC_CLASSES, to_uniocc, uniocc_category
from occworld_tokyo.export.flat import FLAT_INFO_FILE, clock_start_us, flat_list, scene_starts
from occworld_tokyo.export.flow import voxel_flow
from occworld_tokyo.export.uniocc import agent_to_ego
from occworld_tokyo.grid import EgoFrame
from occworld_tokyo.rotations import quat_to_matrix
from occworld_tokyo.sessions import layout

ROVER = "rover_20240101_120004"
I2WORLD_FIELDS = ("can_bus", "ego_from_sensor", "gt_ego_fut_cmd", "gt_ego_lcf_feat", "lidar_path", "occ_path",
                  "pose_mat", "prev", "sweeps", "token", "timestamp", "gt_ego_fut_trajs", "ego2global_translation",
                  "ego2global_rotation", "lidar2ego_translation", "lidar2ego_rotation", "valid_flag", "gt_boxes",
                  "gt_names", "gt_velocity", "gt_agent_fut_trajs", "gt_agent_fut_masks", "gt_agent_fut_goal",
                  "gt_agent_lcf_feat", "gt_agent_fut_yaw")


def _ego_to_world(x, y, yaw, z) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0, x], [s, c, 0, y], [0, 0, 1, z], [0, 0, 0, 1.0]])


def _corner(i, j, k):
    """UniOcc's voxel point: the lower corner, i * 0.4 - 40 (z from the slab's bottom, -1.0 m)."""
    return np.array([-40 + 0.4 * i, -40 + 0.4 * j, -1.0 + 0.4 * k])


# ----------------------------------------------------------------------------------------------- UniOcc labels
def test_uniocc_label_ids_are_uniocc_s_own():
    """uniocc_viz.py: 0 other .. 10 free; uniocc_eval.py free_label = 10; uniocc_track.py: cars are 1."""
    assert UNIOCC_CLASSES == ("other", "car", "bicycle", "motorcycle", "pedestrian", "traffic_cone", "vegetation",
                              "road", "terrain", "building", "free")
    expect = {"free": "free", "building": "building", "road": "road", "bridge": "building", "railway": "other",
              "vegetation": "vegetation", "terrain": "terrain", "water": "other", "city_furniture": "building",
              "other": "other", "sidewalk": "road", "vehicle": "car", "pedestrian": "pedestrian", "drone": "other"}
    assert {lab.name: UNIOCC_CLASSES[LABEL_TO_UNIOCC[lab.id]] for lab in L.LABELS} == expect
    occ = np.array([[[L.FREE, L.VEHICLE, L.PEDESTRIAN, L.ROAD, L.BUILDING]]], np.uint8)
    assert to_uniocc(occ).tolist() == [[[10, 1, 4, 7, 9]]]
    for kind in ("car", "van", "bus", "truck"):  # one vehicle class in UniOcc
        assert uniocc_category({"label": L.VEHICLE, "kind": kind}) == 1
    assert uniocc_category({"label": L.PEDESTRIAN}) == 4 and uniocc_category({"label": L.DRONE}) == 0
    with pytest.raises(ValueError, match="label id 30"):
        to_uniocc(np.full((1, 1, 1), 30, np.uint8))


# ----------------------------------------------------------------------------------------------- flow at known motion
def test_static_flow_under_ego_translation_and_yaw():
    """A static scene seen from an ego that drives 2 m forward, turns 0.2 rad left and climbs 0.4 m: each voxel's
    corner, fixed in the world, expressed in the next ego frame, minus where it was, in voxels."""
    rng = np.random.default_rng(0)
    occ = np.zeros((200, 200, 16), bool)
    idx = np.stack([rng.integers(0, 200, 300), rng.integers(0, 200, 300), rng.integers(0, 16, 300)], axis=1)
    occ[tuple(idx.T)] = True
    x0, y0, yaw0, g0 = 100.0, 50.0, 0.3, 3.0
    x1, y1, yaw1, g1 = x0 + 2 * np.cos(yaw0), y0 + 2 * np.sin(yaw0), yaw0 + 0.2, g0 + 0.4
    flow = voxel_flow(occ, np.zeros(occ.shape, np.int64), _ego_to_world(x0, y0, yaw0, g0),
                      _ego_to_world(x1, y1, yaw1, g1), {}, {}, {}, 0.5)
    for i, j, k in np.argwhere(occ):
        p = _corner(i, j, k)
        wx = x0 + np.cos(yaw0) * p[0] - np.sin(yaw0) * p[1]
        wy = y0 + np.sin(yaw0) * p[0] + np.cos(yaw0) * p[1]
        dx, dy = wx - x1, wy - y1
        q = np.array([np.cos(yaw1) * dx + np.sin(yaw1) * dy, -np.sin(yaw1) * dx + np.cos(yaw1) * dy,
                      p[2] + g0 - g1])
        assert np.allclose(flow[i, j, k], (q - p) / 0.4, atol=1e-4)
    assert not flow[~occ].any()
    # the corner convention: under a pure 90-degree left turn about the ego origin, voxel (100, 100) has its corner
    # at the origin and does not move; voxel (101, 100) (corner 0.4 m ahead) ends 0.4 m to the right
    occ = np.zeros((200, 200, 16), bool)
    occ[100, 100, 2] = occ[101, 100, 2] = True
    flow = voxel_flow(occ, np.zeros(occ.shape, np.int64), _ego_to_world(0, 0, 0, 0),
                      _ego_to_world(0, 0, np.pi / 2, 0), {}, {}, {}, 0.5)
    assert np.allclose(flow[100, 100, 2], 0, atol=1e-5) and np.allclose(flow[101, 100, 2], [-1, -1, 0], atol=1e-5)


def test_rotating_agent_flow_follows_its_annotated_pose_change():
    """A pedestrian that steps 0.5 m ahead and 0.5 m left and turns 1.0 rad (57 deg) in 0.5 s, seen by an ego that
    drives 1 m forward and turns 0.1 rad: its voxels move rigidly with the box (rotation included), the scene
    around it with the ego motion; an agent gone from the next frame moves with its velocity."""
    ped, gone = 1_000_001, 1_000_002
    occ = np.zeros((200, 200, 16), bool)
    inst = np.zeros(occ.shape, np.int64)
    cells = [(125, 105, 2), (127, 105, 2), (125, 108, 3), (123, 103, 4)]  # the first at the box centre's x, y
    for c in cells:
        occ[c], inst[c] = True, ped
    occ[150, 90, 2], inst[150, 90, 2] = True, gone
    occ[10, 10, 2] = True  # a static voxel
    t_ann = {"center": [10.0, 2.0, 0.6], "rotation": [1.0, 0.0, 0.0, 0.0]}
    u_ann = {"center": [9.5, 2.5 - 0.1, 0.6], "rotation": [np.cos(0.5), 0.0, 0.0, np.sin(0.5)]}  # in ego_u
    E0, E1 = _ego_to_world(0, 0, 0, 0), _ego_to_world(1.0, 0, 0.1, 0)
    v_gone = np.array([3.0, -1.0, 0.0])
    flow = voxel_flow(occ, inst, E0, E1, {ped: agent_to_ego(t_ann), gone: agent_to_ego(t_ann)},
                      {ped: agent_to_ego(u_ann)}, {ped: np.zeros(3), gone: v_gone}, 0.5)
    for c in cells:
        p = _corner(*c)
        b = p - np.array(t_ann["center"])  # body coordinates at t (box yaw 0)
        q = np.array(u_ann["center"]) + np.array([np.cos(1.0) * b[0] - np.sin(1.0) * b[1],
                                                  np.sin(1.0) * b[0] + np.cos(1.0) * b[1], b[2]])
        assert np.allclose(flow[c], (q - p) / 0.4, atol=1e-4)
        translation_only = (np.array(u_ann["center"]) - np.array(t_ann["center"])) / 0.4
        off_centre = np.hypot(*b[:2])
        # at the centre the flow is the box's displacement; off it the turn adds 2 sin(0.5) * radius
        assert np.isclose(np.linalg.norm(flow[c] - translation_only) * 0.4, 2 * np.sin(0.5) * off_centre, atol=1e-4)
        assert off_centre == 0 or np.linalg.norm(flow[c] - translation_only) > 1.0
    p = _corner(150, 90, 2) + v_gone * 0.5  # velocity for the interval, then into ego_u
    dx, dy = p[0] - 1.0, p[1]
    q = np.array([np.cos(0.1) * dx + np.sin(0.1) * dy, -np.sin(0.1) * dx + np.cos(0.1) * dy, p[2]])
    assert np.allclose(flow[150, 90, 2], (q - _corner(150, 90, 2)) / 0.4, atol=1e-4)
    p = _corner(10, 10, 2)
    dx, dy = p[0] - 1.0, p[1]
    q = np.array([np.cos(0.1) * dx + np.sin(0.1) * dy, -np.sin(0.1) * dx + np.cos(0.1) * dy, p[2]])
    assert np.allclose(flow[10, 10, 2], (q - p) / 0.4, atol=1e-4)


# ----------------------------------------------------------------------------------------------- ego features
def test_ego_motion_features_for_a_known_motion():
    """A rover heading north (yaw 90 deg) at 4 m/s, speeding up at 1 m/s^2 and turning left at 0.2 rad/s: in the
    lidar axes (x right, y forward) it moves along +y; curvature 0.2 / 4; can_bus in the nuScenes layout."""
    fr = EgoFrame(x=10.0, y=5.0, yaw=np.pi / 2, ground_z=2.0)
    m = F.ego_motion(fr, np.array([0.0, 4.0, 0.0]), np.array([0.0, 0.0, 0.2]), np.array([0.0, 1.0, 0.0]))
    feat = F.ego_lcf_feat(m)
    assert np.allclose(feat, [0, 4, 0, 1, 0.2, 0, 0, 4, 0.05])
    bus = F.can_bus(fr, m)
    assert bus.shape == (18,) and np.allclose(bus[:3], [10, 5, 2])
    assert np.allclose(bus[3:7], [np.cos(np.pi / 4), 0, 0, np.sin(np.pi / 4)])  # w, x, y, z
    assert np.allclose(bus[7:10], [1, 0, 0]) and np.allclose(bus[10:13], [0, 0, 0.2])
    assert np.allclose(bus[13:16], [4, 0, 0]) and np.allclose(bus[16:], 0)
    assert F.ego_lcf_feat(F.ego_motion(fr, np.array([0.0, 0.1, 0.0]), np.array([0.0, 0.0, 0.2]),
                                       np.zeros(3)))[8] == 0.0  # too slow for a curvature


# ----------------------------------------------------------------------------------------------- the flat list
def _info(scene, k, t):
    return {"token": f"{scene}_{k:06d}", "scene_name": scene, "frame_idx": k, "timestamp": t,
            "prev": f"{scene}_{k - 1:06d}" if k else ""}


def test_flat_list_keeps_scenes_contiguous_on_one_timeline():
    a, b, c, d = "rover_20240101_120000", "rover_20240101_120004", "rover_20240101_120002_1", "my_scene"
    starts, notes = scene_starts({a: 3_500_000, b: 3_500_000, c: 3_500_000, d: 1_000_000})
    t0 = clock_start_us(a)
    assert t0 == 1704110400 * 10**6 and starts[a] == t0 and starts[b] == t0 + 4_000_000
    # c's clock (12:00:02) overlaps a's 3.5 s; d has no clock: both go after b's end, 1 s apart
    assert starts[c] == t0 + 4_000_000 + 3_500_000 + 1_000_000
    assert starts[d] == starts[c] + 3_500_000 + 1_000_000 and len(notes) == 2 and c in notes[0] and d in notes[1]
    infos = {s: [_info(s, k, starts[s] + k * 500_000) for k in range(8 if s != d else 3)] for s in (b, d, c, a)}
    flat = flat_list(infos)
    assert [e["token"] for e in flat] == [e["token"] for s in (a, b, c, d) for e in infos[s]]
    # I2-World's sequence flag: a new sequence wherever prev is empty -> one per scene
    assert sum(len(e["prev"]) == 0 for e in flat) == 4
    clash = {a: infos[a], "rover_x": [_info("rover_x", k, t0 + 250_000 + k * 500_000) for k in range(2)]}
    with pytest.raises(ValueError, match="timestamps must not overlap"):
        flat_list(clash)


# ----------------------------------------------------------------------------------------------- the exports
@pytest.fixture(scope="module")
def exports(occ3d_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("consumers")
    assert cli(["export", "--format", "uniocc", "--quiet", str(occ3d_data / "occ3d"), str(out / "uniocc")]) == 0
    assert cli(["export", "--format", "occ3d", "--quiet", "--lidar", "--i2world-root", str(out / "occ3d"),
                str(occ3d_data / "occ3d"), str(out / "occ3d")]) == 0
    return out


def _kabsch(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    cs, cd = src.mean(0), dst.mean(0)
    U, _, Vt = np.linalg.svd((src - cs).T @ (dst - cd))
    D = np.diag([1, 1, np.sign(np.linalg.det(Vt.T @ U.T))])
    R = Vt.T @ D @ U.T
    return R, cd - R @ cs


def test_uniocc_export_labels_and_flow_as_uniocc_reads_them(exports, occ3d_data):
    """Labels are UniOcc's ids (free 10, 56-ish % occupied, not 100 %); each frame's flow equals the flow worked out
    from the export's own ego_to_world and annotations (agent_to_ego of both frames) at the voxel corners; the
    ego motion UniOcc estimates from the static flow (Kabsch on road, terrain, building, as its
    EstimateEgoMotionFromFlows) is the recorded one."""
    root, src = exports / "uniocc", occ3d_data / "occ3d" / ROVER
    with open(root / "scene_infos.pkl", "rb") as f:
        scene = pickle.load(f)[0]
    assert scene["classes"][scene["free_label"]] == "free" and scene["free_label"] == 10
    frames = [np.load(root / rel, allow_pickle=True) for rel in scene["occ_in_scene_paths"]]
    dt = 1 / scene["rate_hz"]
    path_est, path_true = np.eye(4), np.eye(4)
    agent_voxels = 0
    for t, npz in enumerate(frames):
        with np.load(layout.occupancy_path(src, t)) as s:
            occ, inst = s["occupancy"], s["instances"]
        assert np.array_equal(npz["occ_label"], LABEL_TO_UNIOCC[occ])
        assert 0.0 < (npz["occ_label"] != 10).mean() < 1.0
        assert np.isclose((npz["occ_label"] != 10).mean(), (occ != L.FREE).mean())
        for u, key in ((t + 1, "occ_flow_forward"), (t - 1, "occ_flow_backward")):
            if not 0 <= u < len(frames):
                assert not npz[key].any()
                continue
            T = np.linalg.inv(frames[u]["ego_to_world_transformation"]) @ npz["ego_to_world_transformation"]
            ann_u = {a["token"]: a for a in frames[u]["annotations"]}
            idx = np.argwhere(occ != L.FREE)
            p = np.array([-40.0, -40.0, -1.0]) + 0.4 * idx
            q = p @ T[:3, :3].T + T[:3, 3]
            ids = inst[tuple(idx.T)]
            for a in npz["annotations"]:
                sel = ids == int(a["token"])
                if a["token"] in ann_u:
                    M = ann_u[a["token"]]["agent_to_ego"] @ np.linalg.inv(a["agent_to_ego"])
                    q[sel] = p[sel] @ M[:3, :3].T + M[:3, 3]
                    agent_voxels += int(sel.sum())
                else:
                    m = p[sel] + a["velocity_ego"] * (u - t) * dt
                    q[sel] = m @ T[:3, :3].T + T[:3, 3]
            assert np.allclose(npz[key][tuple(idx.T)], (q - p) / 0.4, atol=1e-3), (t, key)
            if key == "occ_flow_forward":  # UniOcc's ego-motion estimate from the static voxels' flow
                static = np.isin(npz["occ_label"], [7, 8, 9])
                sidx = np.argwhere(static)
                sp = np.array([-40.0, -40.0, -2.2]) + 0.4 * sidx  # its OccFrameToEgoFrame, z included
                R, tr = _kabsch(sp, sp + 0.4 * npz[key][static])
                step = np.eye(4)
                step[:3, :3], step[:3, 3] = R.T, -R.T @ tr  # points move by the inverse of the ego's motion
                path_est, path_true = path_est @ step, path_true @ np.linalg.inv(T)
    assert agent_voxels > 100
    assert np.linalg.norm(path_est[:3, 3] - path_true[:3, 3]) < 0.01, (path_est[:3, 3], path_true[:3, 3])
    assert np.linalg.norm(path_true[:3, 3]) > 5  # the rover did drive


def test_flat_info_list_reads_as_i2world_reads_it(exports, occ3d_data):
    """I2-World's load_annotations / get_data_info / load_future_frame_info access pattern on the flat list."""
    root = exports / "occ3d"
    with open(root / FLAT_INFO_FILE, "rb") as f:
        data = pickle.load(f)
    assert isinstance(data["infos"], list) and data["metadata"]["version"]
    infos = list(sorted(data["infos"], key=lambda e: e["timestamp"]))
    assert [i["token"] for i in infos] == [f"{ROVER}_{k:06d}" for k in range(8)]
    with open(root / "occworld_tokyo_infos.pkl", "rb") as f:
        by_scene = pickle.load(f)["infos"]
    assert [i["token"] for i in by_scene[ROVER]] == [i["token"] for i in infos]
    assert infos[0]["timestamp"] == clock_start_us(ROVER)
    assert all(b["timestamp"] - a["timestamp"] == 500_000 for a, b in zip(infos, infos[1:]))
    src = occ3d_data / "occ3d" / ROVER
    for k, info in enumerate(infos):
        for key in I2WORLD_FIELDS:
            assert key in info, key
        assert info["prev"] == (infos[k - 1]["token"] if k else "") and info["sweeps"] == []
        assert info["occ_path"].split("/")[-2] == ROVER
        with np.load(Path(info["occ_path"]) / "labels.npz") as npz:  # opened as written, like LoadStreamOcc3D
            assert npz["semantics"].shape == (200, 200, 16)
        l2e = np.eye(4)
        w, x, y, z = info["lidar2ego_rotation"]
        l2e[:3, :3], l2e[:3, 3] = quat_to_matrix(np.array([x, y, z, w])), info["lidar2ego_translation"]
        assert np.allclose(info["ego_from_sensor"], l2e)
        w, x, y, z = info["ego2global_rotation"]
        e2g = np.eye(4)
        e2g[:3, :3], e2g[:3, 3] = quat_to_matrix(np.array([x, y, z, w])), info["ego2global_translation"]
        assert np.allclose(info["pose_mat"], e2g @ l2e)
        bus = np.asarray(info["can_bus"])
        assert bus.shape == (18,) and np.allclose(bus[:3], info["ego2global_translation"])
        assert np.allclose(bus[3:7], info["ego2global_rotation"])
        assert np.array_equal(info["gt_ego_fut_cmd"], np.asarray(info["pose_mode"], np.float32))
        feat = np.asarray(info["gt_ego_lcf_feat"])
        assert feat.shape == (9,) and feat[1] > 0.5 and abs(feat[0]) < 0.5 * feat[1]  # a rover drives forward
        assert np.isclose(np.hypot(feat[0], feat[1]), np.linalg.norm(bus[13:15]), rtol=1e-5)
        pts = np.fromfile(info["lidar_path"], np.float32).reshape(-1, 5)
        ego = np.load(layout.lidar_path(src, k))
        back = pts[:, :3].astype(np.float64) @ l2e[:3, :3].T + l2e[:3, 3]
        assert len(pts) == len(ego) and np.allclose(back, ego[:, :3], atol=1e-4) and (pts[:, 4] == 0).all()
        mask = info["valid_flag"]  # get_box_info's indexing and concatenation
        boxes = np.concatenate([info["gt_boxes"][mask], info["gt_velocity"][mask]], axis=-1)
        assert boxes.shape[1] == 9
    # load_future_frame_info: frame k + j follows frame k through prev links for the whole scene
    for k in range(len(infos) - 1):
        assert infos[k + 1]["prev"] == infos[k]["token"]


def test_i2world_root_only_for_occ3d(occ3d_data, tmp_path, capsys):
    assert cli(["export", "--format", "uniocc", "--i2world-root", "x", str(occ3d_data / "occ3d"),
                str(tmp_path / "u")]) == 2
    assert "--i2world-root and --lidar belong to --format occ3d" in capsys.readouterr().err
    assert not (tmp_path / "u").exists()
    # without --lidar: no point clouds, lidar_path '' (the field is there; nothing to open)
    assert cli(["export", "--format", "occ3d", "--quiet", str(occ3d_data / "occ3d"), str(tmp_path / "o")]) == 0
    with open(tmp_path / "o" / FLAT_INFO_FILE, "rb") as f:
        infos = pickle.load(f)["infos"]
    assert {i["lidar_path"] for i in infos} == {""} and not (tmp_path / "o" / "samples" / "LIDAR_TOP").exists()
    assert infos[0]["occ_path"] == f"./data/nuscenes/gts/{ROVER}/{ROVER}_000000"
