"""The forecast benchmark (reports/benchmark.py): an area split no session can cross, rows and verdicts."""

from __future__ import annotations

import numpy as np
import pytest

from occworld_tokyo.citymodel.crs import lonlat_to_local
from occworld_tokyo.citymodel.loader import load_city
from occworld_tokyo.citymodel.meshcode import mesh_bounds
from occworld_tokyo.citymodel.sample_city import city_tiles, write_sample_city
from occworld_tokyo.reports.benchmark import PROFILES, area_split, rows_of, summary_table


def test_area_split_covers_every_square_once_and_shares_none():
    for km in (2, 4, 8):
        split = area_split(km)
        sets = {k: set(v) for k, v in split.items()}
        assert not (sets["train"] & sets["val"]) and not (sets["train"] & sets["test"]) and not (sets["val"] & sets["test"])
        assert sorted(sets["train"] | sets["val"] | sets["test"]) == city_tiles(km)
        assert len(sets["train"]) == 2 * len(sets["val"]) == 2 * len(sets["test"]) == km * km // 2
    with pytest.raises(ValueError, match="even"):
        area_split(3)
    for name, p in PROFILES.items():
        area_split(p.city_km)   # every profile's city splits


def test_split_cities_hold_only_their_own_squares(tmp_path):
    """Each split's files carry geometry of its squares only (features go to the square of their centre, so a
    building or terrain triangle may reach at most its own half-size over the edge)."""
    split = area_split(2)
    for name, tiles in split.items():
        write_sample_city(tmp_path / name, size_km=2, tiles=tiles, progress=False)
        codes = {p.name.split("_")[0] for p in (tmp_path / name / "udx").rglob("*.gml") if "_dem_" not in p.name}
        assert codes == set(tiles)
        city = load_city(tmp_path / name / "udx", progress=False)
        b = np.array([mesh_bounds(c) for c in tiles])                      # lat_min, lon_min, lat_max, lon_max
        x0, y0 = lonlat_to_local(np.array([b[:, 1].min()]), np.array([b[:, 0].min()]), city.origin.lat, city.origin.lon)
        x1, y1 = lonlat_to_local(np.array([b[:, 3].max()]), np.array([b[:, 2].max()]), city.origin.lat, city.origin.lon)
        lo, hi = city.triangles.reshape(-1, 3).min(0), city.triangles.reshape(-1, 3).max(0)
        margin = 60.0  # m: half the largest block / terrain triangle
        assert lo[0] > x0[0] - margin and lo[1] > y0[0] - margin and hi[0] < x1[0] + margin and hi[1] < y1[0] + margin
    with pytest.raises(ValueError, match="not squares"):
        write_sample_city(tmp_path / "bad", size_km=2, tiles=["12345678"], progress=False)


def _metrics(miou: float) -> dict:
    f = {"miou_1s": miou, "miou_2s": miou, "miou_3s": miou, "miou_avg": miou, "iou_1s": 0.5, "iou_2s": 0.5,
         "iou_3s": 0.5, "iou_avg": 0.5, "miou_occworld_1s": 0.9, "miou_occworld_2s": 0.9, "miou_occworld_3s": 0.9,
         "miou_occworld_avg": 0.9}
    base = {**f, "miou_1s": 0.3, "miou_2s": 0.3, "miou_3s": 0.3}
    v = {"vpq": 0.1, "by_threshold": {"0.5": {"vpq": 0.1}, "0.2": {"vpq": 0.2}}}
    group = {"forecast": {"world_model_plan": f, "ego_warp": base}, "vpq": {"world_model_plan": v, "ego_warp": v}}
    return {**group, "forecast_visible": group["forecast"], "vpq_visible": group["vpq"], "windows_scored": 4,
            "by_agent": {"drone": group}}


def test_rows_are_flat_and_beats_needs_the_worst_seed():
    rows = rows_of(_metrics(0.5), "test", 0) + rows_of(_metrics(0.35), "test", 1)
    keys = {"split", "method", "seed", "agent", "voxels", "rule", "horizon_s", "miou", "iou", "vpq", "vpq_0.2"}
    assert all(keys <= set(r) for r in rows)
    assert {r["method"] for r in rows} == {"model_plan", "ego_warp"}
    assert {r["agent"] for r in rows} == {"all", "drone"} and {r["voxels"] for r in rows} == {"visible", "all"}
    assert {r["rule"] for r in rows} == {"occ3d", "occworld"}
    one = [r for r in rows if r["method"] == "model_plan" and r["seed"] == 0 and r["agent"] == "all"
           and r["voxels"] == "visible" and r["rule"] == "occworld" and r["horizon_s"] == 2.0]
    assert len(one) == 1 and one[0]["miou"] == 0.9 and one[0]["vpq_0.2"] == 0.2
    text = "\n".join(summary_table(rows))
    assert "beats at its worst seed on mIoU 1s, mIoU 2s, mIoU 3s; does not on IoU 1s" in text  # 0.35 > 0.3
    worse = rows_of(_metrics(0.5), "test", 0) + rows_of(_metrics(0.25), "test", 1)             # seed 1 below
    assert "vs ego_warp: beats at its worst seed on nothing" in "\n".join(summary_table(worse))


def test_world_options_name_each_seeds_own_checkpoint_and_epochs_override(tmp_path, monkeypatch):
    """A gate trained alone on each seed's world model: '{seed}' in --world-options becomes the seed, and
    --world-epochs replaces the profile's epochs of the world-model stage only."""
    import occworld_tokyo.training.cli as train_cli
    from occworld_tokyo.reports.benchmark import main, train_seed

    calls: list[list[str]] = []
    monkeypatch.setattr(train_cli, "main", lambda argv: calls.append(argv) or 0)
    folders = {s: tmp_path / "data" / s for s in ("train", "val", "test")}
    prof = PROFILES["smoke"]
    for seed in (1, 2):
        train_seed(tmp_path, prof, folders, seed, ["load_from=/runs/seed{seed}/best.pth"], world_epochs=5)
    world = [a for a in calls if "load_from=/runs/seed1/best.pth" in a or "load_from=/runs/seed2/best.pth" in a]
    assert len(world) == 2 and "load_from=/runs/seed2/best.pth" in world[1]
    assert all(a[a.index("--epochs") + 1] == "5" for a in world)
    tokenizer = [a for a in calls if a not in world]
    assert tokenizer and all(a[a.index("--epochs") + 1] == str(prof.tokenizer_epochs) for a in tokenizer)
    assert main(["--profile", "smoke", "--out", str(tmp_path / "b"), "--world-epochs", "0"]) == 2
