"""The report's forecast tables and "where the model wins and loses" text (reports/comparison.py) from hand-made
metrics dicts: the current layout (plan mode, visible voxels, two VPQ thresholds) and an older one."""

from __future__ import annotations

import json

import pytest

from occworld_tokyo.reports.comparison import comparison_json, comparisons, forecast_tables, wins_and_losses
from occworld_tokyo.reports.report import guide_table, results_tables


def _fc(miou: tuple[float, float, float], iou: tuple[float, float, float]) -> dict:
    f = {f"miou_{h}": v for h, v in zip(("1s", "2s", "3s"), miou)}
    f.update({f"iou_{h}": v for h, v in zip(("1s", "2s", "3s"), iou)})
    f["miou_avg"], f["iou_avg"] = sum(miou) / 3, sum(iou) / 3
    return f


def _vpq(strict: float | None, loose: float | None) -> dict:
    return {"vpq": strict, "settings": {"iou_threshold": 0.5, "iou_thresholds": [0.5, 0.2]},
            "by_threshold": {"0.5": {"vpq": strict}, "0.2": {"vpq": loose}}}


METRICS = {
    "val_samples": 8, "epoch": 3, "visibility": "camera",
    "forecast": {"world_model": _fc((0.30, 0.20, 0.10), (0.50, 0.40, 0.30)),
                 "world_model_plan": _fc((0.35, 0.30, 0.25), (0.55, 0.50, 0.45)),
                 "copy_last": _fc((0.25, 0.15, 0.05), (0.45, 0.35, 0.25)),
                 "ego_warp": _fc((0.32, 0.20, 0.08), (0.60, 0.40, 0.20))},
    "forecast_visible": {"world_model": _fc((0.40, 0.30, 0.20), (0.60, 0.50, 0.40)),
                         "copy_last": _fc((0.30, 0.20, 0.10), (0.50, 0.40, 0.30))},
    "vpq": {"world_model": _vpq(0.10, 0.20), "world_model_plan": _vpq(0.12, 0.25), "copy_last": _vpq(0.01, 0.02),
            "ego_warp": _vpq(0.15, 0.20)},
    "vpq_visible": {"world_model": _vpq(0.20, 0.30), "copy_last": _vpq(0.05, None)},
    "planning": {"world_model": {"l2_1s": 0.5, "l2_2s": 1.0, "l2_3s": 1.5, "l2_avg": 1.0, "collision_rate": 0.1}},
    "recon_future": {"miou": 0.6, "iou": 0.8}, "recon_future_visible": {"miou": 0.7, "iou": 0.9},
}


def test_tables_show_every_method_voxel_set_and_threshold():
    text = "\n".join(forecast_tables(METRICS))
    assert "Forecast, all voxels (%):" in text and "Forecast, camera-visible voxels (%):" in text
    assert "| VPQ IoU>0.5 | VPQ IoU>0.2 |" in text
    assert "| world_model_plan | 35.0 | 30.0 | 25.0 | 30.0 | 55.0 | 50.0 | 45.0 | 50.0 | 12.0 | 25.0 |" in text
    assert "| ego_warp | 32.0 | 20.0 | 8.0 | 20.0 | 60.0 | 40.0 | 20.0 | 40.0 | 15.0 | 20.0 |" in text
    assert "| copy_last | 30.0 | 20.0 | 10.0 | 20.0 | 50.0 | 40.0 | 30.0 | 40.0 | 5.0 | n/a |" in text  # visible
    lines, _ = results_tables(METRICS, None)
    assert "| tokenizer, future frames (ceiling of the forecast) | 60.0 | 80.0 | 70.0 | 90.0 |" in lines


def test_wins_and_losses_from_the_numbers():
    lines = wins_and_losses(METRICS)
    text = "\n".join(lines)
    # all voxels, world_model vs ego_warp: mIoU 30/20/10/avg 20 vs 32/20/8/avg 20 -> loses at 1 s by 2 points,
    # ties at 2 s and avg, wins at 3 s by 2; IoU 50/40/30 vs 60/40/20 -> loses 1 s, ties 2 s and avg, wins 3 s;
    # VPQ 10 vs 15 at 0.5 (loss), 20 vs 20 at 0.2 (tie)
    assert ("  - vs ego_warp: mIoU wins at 3 s (+2.0 points, 10.0 vs 8.0), loses at 1 s (-2.0 points, 30.0 vs "
            "32.0), ties at 2 s (+0.0 points, 20.0 vs 20.0), at avg (+0.0 points, 20.0 vs 20.0)") in text
    assert "VPQ IoU>0.5 loses (-5.0 points, 10.0 vs 15.0); VPQ IoU>0.2 ties (+0.0 points, 20.0 vs 20.0)." in text
    # vs copy_last the unconditioned model wins all 10 (mIoU and IoU at 4 horizons, VPQ at 2 thresholds);
    # vs ego_warp it wins 2 (3 s), loses 3 (1 s twice, VPQ 0.5) and ties 5: 12 wins, 3 losses of 20
    assert "- **world_model**, all voxels: wins 12 and loses 3 of 20 comparisons with the baselines (ties: 5)." in lines
    # the plan mode loses only IoU at 1 s (55 vs 60) and VPQ at 0.5 (12 vs 15) to ego_warp; it beats world_model
    assert "- **world_model_plan**, all voxels: wins 18 and loses 2 of 20 comparisons with the baselines." in lines
    assert any(line.startswith("  - vs world_model: mIoU wins at 1 s (+5.0 points, 35.0 vs 30.0)") for line in lines)
    # camera-visible voxels: only world_model and copy_last there; the missing VPQ 0.2 of copy_last is skipped
    assert "- **world_model**, camera-visible voxels: wins 9 and loses 0 of 9 comparisons with the baselines." in lines
    assert not any("world_model_plan**, camera-visible" in line for line in lines)


def test_comparison_json_is_plain_data():
    data = json.loads(json.dumps(comparison_json(METRICS)))
    assert set(data["tables"]) == {"all voxels", "camera-visible voxels"}
    assert data["tables"]["all voxels"]["world_model"]["vpq_0.2"] == 0.2
    first = data["comparisons"][0]
    assert first["mode"] == "world_model" and first["other"] == "copy_last" and first["outcome"] == "win"
    assert first["points"] == pytest.approx(5.0)


def test_older_metrics_without_the_new_keys():
    """Before the plan mode, visible voxels and VPQ thresholds: one VPQ at settings.iou_threshold, no by_threshold
    (and the oldest files had no settings either)."""
    old = {"val_samples": 4, "epoch": 1,
           "forecast": {"world_model": _fc((0.3, 0.2, 0.1), (0.5, 0.4, 0.3)),
                        "copy_last": _fc((0.2, 0.1, 0.1), (0.4, 0.4, 0.4))},
           "vpq": {"world_model": {"vpq": 0.1, "settings": {"iou_threshold": 0.5}}, "copy_last": {"vpq": 0.0}},
           "planning": {}, "recon_future": {"miou": 0.5, "iou": 0.7}}
    text = "\n".join(forecast_tables(old))
    assert "Forecast, all voxels (%):" in text and "visible" not in text
    assert "| world_model | 30.0 | 20.0 | 10.0 | 20.0 | 50.0 | 40.0 | 30.0 | 40.0 | 10.0 | n/a |" in text
    lines = wins_and_losses(old)
    # mIoU 30/20/10/20 vs 20/10/10/13.3: 3 wins, a tie at 3 s; IoU 50/40/30/40 vs 40/40/40/40: a win at 1 s, a loss
    # at 3 s, ties at 2 s and avg; VPQ at 0.5 (the old files' own threshold): 10 vs 0, a win; none at 0.2
    assert lines[0] == "- **world_model**, all voxels: wins 5 and loses 1 of 9 comparisons with the baselines (ties: 3)."
    results_tables(old, None)
    guide_table(old, None, None)
    assert wins_and_losses({"forecast": {}}) == ["- no forecast of the world model and a baseline to compare"]
    assert comparisons({}) == []


def test_guide_table_never_rounds_a_miss_onto_the_bound():
    """A forecast mIoU of 0.29998 is not "> 0.3": the table must not print it as 0.3 beside "no"."""
    wm = {"forecast": {"world_model": {"miou_avg": 0.29998}, "world_model_plan": {"miou_avg": 0.479}},
          "vpq": {"world_model": {"vpq": 0.0}, "world_model_plan": {"vpq": 0.0596}}}
    rows = {line.split(" | ")[0].lstrip("| "): line for line in guide_table(wm, {"val_ce": 0.0563}, 0.0465)}
    assert "| 0.29998 | no |" in rows["mIoU"]
    assert "| 0.479 | yes |" in rows["mIoU (plan-conditioned)"]
    assert "| 0.0465 | no |" in rows["Train Loss (reconstruction)"]


def test_invented_classes_and_the_ground_truth_class_miou():
    from occworld_tokyo.reports.report import invented_classes

    fc = {"steps": [0, 1], "steps_s": [0.5, 1.0], "miou_1s": 0.25,
          "per_class_iou": {"building": [0.8, 0.5], "railway": [0.0, 0.0], "vehicle": [None, None]},
          "per_class_voxels": {"building": {"gt": [10, 10], "pred": [9, 12]}, "railway": {"gt": [0, 0], "pred": [3, 4]},
                               "vehicle": {"gt": [0, 0], "pred": [0, 0]}}}
    lines = invented_classes({"forecast": {"world_model_plan": fc}})
    assert "| world_model_plan | railway (7 voxels) | 50.0 |" in lines  # 1 s = step 2: building 0.5 only
    assert invented_classes({"forecast": {"world_model": {"miou_1s": 0.3}}}) == []  # older files: nothing
