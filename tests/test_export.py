"""`occworld-tokyo export --format occ3d|uniocc`: the written layouts read back by readers written from the formats'
documentation (REFERENCE s7, the released OccWorld dataset.py, UniOcc's README / uniocc_dataset.py), the class
mapping, the pose conventions, the flow, and the export's safety (source untouched, atomic, refusals)."""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from occworld_tokyo import labels as L
from occworld_tokyo.cli import main as cli
from occworld_tokyo.export import frames as F
from occworld_tokyo.export.classes import LABEL_TO_OCC3D, OCC3D_CLASSES, to_occ3d
from occworld_tokyo.grid import EgoFrame
from occworld_tokyo.sessions import layout
from occworld_tokyo.rotations import quat_to_matrix

ROVER = "rover_20240101_120004"  # the second session of the fixture (8 frames at 2 Hz -> 4 s later)


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def exported(occ3d_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("exports")
    before = _digest(occ3d_data)
    for fmt in ("occ3d", "uniocc"):
        assert cli(["export", "--format", fmt, "--quiet", str(occ3d_data / "occ3d"), str(out / fmt)]) == 0
    assert _digest(occ3d_data) == before, "the export modified its source"
    return out


def _mat_wxyz(q) -> np.ndarray:
    w, x, y, z = q
    return quat_to_matrix(np.array([x, y, z, w]))


# ----------------------------------------------------------------------------------------------- readers
def read_occ3d(root: Path, info_file: str = "occworld_tokyo_infos.pkl") -> dict:
    """A reader written from the formats' documentation: the info pickle and every labels.npz it names."""
    with open(root / info_file, "rb") as f:
        data = pickle.load(f)
    assert set(data) >= {"infos"} and isinstance(data["infos"], dict)
    for scene, infos in data["infos"].items():
        assert isinstance(infos, list) and infos
        for info in infos:
            for key in ("token", "gt_ego_fut_trajs", "pose_mode", "ego2global_translation", "ego2global_rotation",
                        "lidar2ego_translation", "lidar2ego_rotation", "cams", "valid_flag", "num_lidar_pts",
                        "gt_boxes", "gt_names", "gt_velocity", "gt_agent_fut_trajs", "gt_agent_fut_masks",
                        "gt_agent_fut_goal", "gt_agent_lcf_feat", "gt_agent_fut_yaw"):
                assert key in info, key
            assert np.asarray(info["gt_ego_fut_trajs"])[0].shape == (2,)
            assert np.asarray(info["pose_mode"]).shape == (3,) and np.asarray(info["pose_mode"]).sum() == 1
            assert len(info["ego2global_translation"]) == 3 and len(info["ego2global_rotation"]) == 4
            assert abs(np.linalg.norm(info["ego2global_rotation"]) - 1) < 1e-9
            n = len(info["gt_boxes"])
            assert np.asarray(info["gt_boxes"]).shape == (n, 7) and len(info["gt_names"]) == n
            assert np.asarray(info["gt_velocity"]).shape == (n, 2) and np.asarray(info["valid_flag"]).shape == (n,)
            # the released evaluation concatenates these per box
            attrs = np.concatenate([info["gt_agent_fut_trajs"], info["gt_agent_fut_masks"],
                                    np.asarray(info["gt_agent_fut_goal"])[..., None], info["gt_agent_lcf_feat"],
                                    info["gt_agent_fut_yaw"]], axis=-1)
            assert attrs.shape == (n, 12 + 6 + 1 + 9 + 6)
            for cam in info["cams"].values():
                assert (root / cam["data_path"]).is_file()
                assert np.asarray(cam["cam_intrinsic"]).shape == (3, 3)
                r = np.asarray(cam["sensor2lidar_rotation"])
                assert r.shape == (3, 3) and np.allclose(r @ r.T, np.eye(3), atol=1e-9)
                assert len(cam["sensor2ego_rotation"]) == 4 and len(cam["sensor2ego_translation"]) == 3
            with np.load(root / "gts" / scene / info["token"] / "labels.npz") as npz:
                assert set(npz.files) == {"semantics", "mask_lidar", "mask_camera"}
                sem = npz["semantics"]
                assert sem.shape == (200, 200, 16) and sem.dtype == np.uint8 and sem.max() <= 17
                for m in ("mask_lidar", "mask_camera"):
                    assert npz[m].shape == (200, 200, 16) and npz[m].dtype == np.uint8 and npz[m].max() <= 1
    return data


def read_uniocc(root: Path) -> list[dict]:
    """UniOcc's access pattern (uniocc_dataset.py): scene_infos.pkl, then np.load(allow_pickle=True) per frame."""
    with open(root / "scene_infos.pkl", "rb") as f:
        scenes = pickle.load(f)
    assert isinstance(scenes, list) and scenes
    for scene in scenes:
        assert isinstance(scene["scene_name"], str) and scene["occ_in_scene_paths"]
        for rel in scene["occ_in_scene_paths"]:
            npz = np.load(root / rel, allow_pickle=True)
            assert npz["occ_label"].shape == (200, 200, 16) and npz["occ_label"].max() <= 10  # UniOcc ids, 10 free
            assert npz["occ_mask_camera"].shape == (200, 200, 16)
            for key in ("occ_flow_forward", "occ_flow_backward"):
                assert npz[key].shape == (200, 200, 16, 3) and npz[key].dtype == np.float32
            e2w = npz["ego_to_world_transformation"]
            assert e2w.shape == (4, 4) and np.allclose(e2w[3], [0, 0, 0, 1])
            for cam in npz["cameras"]:
                assert {"name", "filename", "intrinsics", "extrinsics"} <= set(cam)
                assert (root / cam["filename"]).is_file() and cam["extrinsics"].shape == (4, 4)
            for ann in npz["annotations"]:
                assert {"token", "agent_to_ego", "agent_to_world", "size", "category_id"} <= set(ann)
                assert np.allclose(e2w @ ann["agent_to_ego"], ann["agent_to_world"])
                assert len(ann["size"]) == 3
    return scenes


# ----------------------------------------------------------------------------------------------- layouts
def test_occ3d_layout_reads_back_and_matches_the_source(exported, occ3d_data):
    data = read_occ3d(exported / "occ3d")
    assert list(data["infos"]) == [ROVER]  # the drone is not carried
    infos = data["infos"][ROVER]
    assert [i["token"] for i in infos] == [f"{ROVER}_{k:06d}" for k in range(8)]
    src = occ3d_data / "occ3d" / ROVER
    for k, info in enumerate(infos):
        with np.load(layout.occupancy_path(src, k)) as npz:
            occ, inst = npz["occupancy"], npz["instances"]
            mask_cam = npz["mask_camera"]
        objects = json.loads(layout.annotation_path(src, k).read_text())["objects"]
        with np.load(exported / "occ3d" / "gts" / ROVER / info["token"] / "labels.npz") as npz:
            assert np.array_equal(npz["semantics"], to_occ3d(occ, inst, objects)[0])
            assert np.array_equal(npz["mask_camera"], mask_cam.astype(np.uint8))
        assert sorted(info["instance_ids"].tolist()) == sorted(o["id"] for o in objects if o["kind"] != "drone")
    assert data["metadata"]["classes"] == list(OCC3D_CLASSES)


def test_uniocc_layout_reads_back(exported):
    scenes = read_uniocc(exported / "uniocc")
    assert [s["scene_name"] for s in scenes] == [ROVER] and len(scenes[0]["occ_in_scene_paths"]) == 8
    first = np.load(exported / "uniocc" / scenes[0]["occ_in_scene_paths"][0], allow_pickle=True)
    last = np.load(exported / "uniocc" / scenes[0]["occ_in_scene_paths"][-1], allow_pickle=True)
    assert not first["occ_flow_backward"].any() and not last["occ_flow_forward"].any()
    assert first["occ_flow_forward"].any()


def test_export_reports_what_it_cannot_carry(occ3d_data, tmp_path, capsys):
    assert cli(["export", "--format", "occ3d", "--quiet", str(occ3d_data / "occ3d"), str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    assert "not carried: drone_20240101_120000: a drone flying" in out
    assert f"note: {ROVER}: 8 frames, shorter than the window" in out
    # sessions on the 1.25 m grid: nothing can be carried, the fix is named, nothing is written
    assert cli(["export", "--format", "uniocc", "--quiet", str(occ3d_data / "default"), str(tmp_path / "b")]) == 1
    out = capsys.readouterr().out
    assert "cannot be resampled from 1.25 m levels" in out and "--grid occ3d" in out
    assert not (tmp_path / "b").exists()


def test_export_never_overwrites_and_leaves_nothing_on_failure(occ3d_data, tmp_path, capsys):
    (tmp_path / "exists").mkdir()
    assert cli(["export", "--format", "occ3d", str(occ3d_data / "occ3d"), str(tmp_path / "exists")]) == 2
    assert "already exists" in capsys.readouterr().err
    assert cli(["export", "--format", "occ3d", str(tmp_path / "nothing"), str(tmp_path / "o")]) == 2
    assert "no finished session" in capsys.readouterr().err
    # a damaged frame in the source: a clear error naming the file, no OUT_DIR and no staging folder left
    import shutil
    src = tmp_path / "src"
    shutil.copytree(occ3d_data / "occ3d" / ROVER, src / ROVER)
    layout.occupancy_path(src / ROVER, 5).write_bytes(b"not a zip")
    assert cli(["export", "--format", "uniocc", "--quiet", str(src), str(tmp_path / "out")]) == 2
    assert "000005_occupancy.npz" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exists", "src"]


# ----------------------------------------------------------------------------------------------- class mapping
def test_class_mapping_table():
    expect = {"free": "free", "building": "manmade", "road": "driveable_surface", "bridge": "manmade",
              "railway": "other_flat", "vegetation": "vegetation", "terrain": "terrain", "water": "other_flat",
              "city_furniture": "manmade", "other": "others", "sidewalk": "sidewalk", "vehicle": "car",
              "pedestrian": "pedestrian", "drone": "others"}
    assert {l.name: OCC3D_CLASSES[LABEL_TO_OCC3D[l.id]] for l in L.LABELS} == expect
    assert OCC3D_CLASSES.index("free") == 17 and len(OCC3D_CLASSES) == 18


def test_vehicles_split_by_annotation_kind():
    occ = np.zeros((4, 4, 2), np.uint8)
    inst = np.zeros((4, 4, 2), np.int32)
    occ[0, :, 0], occ[1, :, 0], occ[2, :, 0], occ[3, :, 0] = L.VEHICLE, L.VEHICLE, L.VEHICLE, L.ROAD
    inst[0, :, 0], inst[1, :, 0], inst[2, :, 0] = 1_000_001, 1_000_002, 1_000_003
    occ[:, :, 1] = L.FREE
    objects = [{"id": 1_000_001, "label": L.VEHICLE, "kind": "bus"}, {"id": 1_000_002, "label": L.VEHICLE, "kind": "van"}]
    sem, problems = to_occ3d(occ, inst, objects)
    assert (sem[0, :, 0] == OCC3D_CLASSES.index("bus")).all() and (sem[1, :, 0] == OCC3D_CLASSES.index("car")).all()
    assert (sem[2, :, 0] == OCC3D_CLASSES.index("car")).all() and problems == ["vehicle instance 1000003: no annotation -> car"]
    assert (sem[3, :, 0] == OCC3D_CLASSES.index("driveable_surface")).all() and (sem[:, :, 1] == 17).all()
    sem, _ = to_occ3d(occ, inst, [{"id": 1_000_003, "label": L.VEHICLE, "kind": "truck"}])
    assert (sem[2, :, 0] == OCC3D_CLASSES.index("truck")).all()
    with pytest.raises(ValueError, match="label id 20"):
        to_occ3d(np.full((1, 1, 1), 20, np.uint8), np.zeros((1, 1, 1), np.int32), [])


# ----------------------------------------------------------------------------------------------- pose conventions
def test_known_motion_gives_documented_trajectory_and_command():
    """A rover heading north (yaw 90 deg) at 2 m per frame: ego2global rotates ego x (forward) onto world north, and
    every gt_ego_fut_trajs step is (0, 2) in the lidar axes (x right, y forward); then the same rover curving left
    gets the 'left' command, and right when it curves right."""
    straight = [EgoFrame(x=10.0, y=5.0 + 2.0 * k, yaw=np.pi / 2, ground_z=3.0) for k in range(8)]
    steps, mask = F.ego_future_steps(straight, 0)
    assert np.allclose(steps, [[0.0, 2.0]] * 6) and mask.tolist() == [1.0] * 6
    assert F.command(steps, mask).tolist() == [0.0, 0.0, 1.0]
    R = _mat_wxyz(F.yaw_quat_wxyz(np.pi / 2))
    assert np.allclose(R @ [1, 0, 0], [0, 1, 0]) and np.allclose(F.ego_to_global(straight[0])[:3, 3], [10, 5, 3])
    steps, mask = F.ego_future_steps(straight, 4)  # 3 steps left in the session
    assert mask.tolist() == [1, 1, 1, 0, 0, 0] and np.allclose(steps[3:], 0)
    for sign, cmd in ((1, "left"), (-1, "right")):  # a quarter circle of radius 10 m, left (ccw) or right
        a = np.linspace(0, np.pi / 2, 7)
        arc = [EgoFrame(x=10 * np.sin(t), y=sign * 10 * (1 - np.cos(t)), yaw=sign * t, ground_z=0.0) for t in a]
        steps, mask = F.ego_future_steps(arc, 0)
        assert np.isclose(steps.sum(axis=0)[0], -sign * 10.0)  # lateral: 10 m to the left is lidar x = -10
        assert F.COMMANDS[int(np.argmax(F.command(steps, mask)))] == cmd


def test_exported_poses_follow_the_session(exported, occ3d_data):
    """ego2global is the session's ego frame; gt_ego_fut_trajs[0] is the next frame's world displacement expressed
    in this frame's lidar axes through the exported rotations themselves; lidar2ego is the nuScenes -90 deg."""
    infos = read_occ3d(exported / "occ3d")["infos"][ROVER]
    src = occ3d_data / "occ3d" / ROVER
    poses = [json.loads(layout.pose_path(src, k).read_text()) for k in range(8)]
    for k in range(7):
        info, p, q = infos[k], poses[k], poses[k + 1]
        assert np.allclose(info["ego2global_translation"], [p["position"]["x"], p["position"]["y"], p["ground_height"]])
        R_ego = _mat_wxyz(info["ego2global_rotation"])
        R_lidar = _mat_wxyz(info["lidar2ego_rotation"])
        assert np.allclose(R_lidar @ [0, 1, 0], [1, 0, 0]) and np.allclose(R_lidar @ [1, 0, 0], [0, -1, 0])
        d_world = np.array([q["position"]["x"] - p["position"]["x"], q["position"]["y"] - p["position"]["y"], 0.0])
        d_lidar = R_lidar.T @ R_ego.T @ d_world
        assert np.allclose(info["gt_ego_fut_trajs"][0], d_lidar[:2], atol=1e-9)
        assert info["gt_ego_fut_trajs"][0][1] > 0  # a rover drives forward
    cam = infos[0]["cams"]["CAM_FRONT"]
    R_cam = _mat_wxyz(cam["sensor2ego_rotation"])
    assert R_cam @ [0, 0, 1] @ [1, 0, 0] > 0.9  # the front camera's optical axis looks forward (ego x)


# ----------------------------------------------------------------------------------------------- flow
def test_flow_carries_voxels_onto_the_next_frame(exported):
    """Static voxels moved by the forward flow land on occupied voxels of the next frame; agent voxels on the
    voxels of the same kind. The flow moves a voxel's corner point (UniOcc's convention); its centre moves by
    nearly the same (our turns are small between frames)."""
    root = exported / "uniocc"
    scene = read_uniocc(root)[0]
    hits = total = agent_hits = agent_total = 0
    for a, b in zip(scene["occ_in_scene_paths"][:-1], scene["occ_in_scene_paths"][1:]):
        na, nb = np.load(root / a, allow_pickle=True), np.load(root / b, allow_pickle=True)
        occ_a, occ_b = na["occ_label"], nb["occ_label"]
        idx = np.argwhere(np.isin(occ_a, [6, 7, 8, 9]))  # UniOcc's vegetation, road, terrain, building
        dest = np.floor(idx + 0.5 + na["occ_flow_forward"][tuple(idx.T)]).astype(int)
        inside = np.all((dest >= 0) & (dest < occ_a.shape), axis=1)
        hits += int((occ_b[tuple(dest[inside].T)] != 10).sum())
        total += int(inside.sum())
        idx = np.argwhere(np.isin(occ_a, [1, 4]))  # car, pedestrian
        if len(idx):
            dest = np.floor(idx + 0.5 + na["occ_flow_forward"][tuple(idx.T)]).astype(int)
            inside = np.all((dest >= 0) & (dest < occ_a.shape), axis=1)
            agent_hits += int(np.isin(occ_b[tuple(dest[inside].T)], [1, 4]).sum())
            agent_total += int(inside.sum())
    assert total > 10_000 and hits / total > 0.95, hits / total
    assert agent_total > 100 and agent_hits / agent_total > 0.8, (agent_hits, agent_total)
