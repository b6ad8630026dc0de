"""The main job at a tiny size: every stage runs and the report shows data, training and results."""

from __future__ import annotations

import json

from occworld_tokyo.reports.demo import main as demo_main


def test_main_job_tiny(tmp_path, capsys):
    out = tmp_path / "demo"
    assert demo_main(["--out", str(out), "--sessions", "3", "--frames", "12", "--tokenizer-epochs", "1",
                      "--world-epochs", "1", "--eval-samples", "2", "--workers", "1"]) == 0
    report = (out / "report" / "report.md").read_text()
    for method in ("| world_model |", "| copy_last |", "| ego_warp |", "| ego_warp_fill |", "| constant_velocity |"):
        assert method in report
    assert "### Where the model wins and loses" in report and "comparisons with the baselines" in report
    assert "Forecast, all voxels (%):" in report and "Forecast, camera-visible voxels (%):" in report
    assert "| VPQ IoU>0.5 | VPQ IoU>0.2 |" in report
    for row in ("| Train Loss (reconstruction) | < 0.01 |", "| Val Loss | < 0.05 |", "| mIoU | > 0.3 |", "| VPQ | > 0.2 |"):
        assert row in report  # the guide's expected metrics, next to this run's values
    metrics = json.loads((out / "report" / "metrics.json").read_text())
    forecast = metrics["world_model_stage"]["forecast"]
    assert set(forecast) == {"world_model", "world_model_plan", "copy_last", "ego_warp", "ego_warp_fill",  # both modes
                             "world_model_plan+voxel_copy", "world_model+unseen_prior"}  # + the hand-made ones
    assert "| world_model_plan+voxel_copy |" in report  # scored under its own name, never as the model
    assert set(metrics["world_model_stage"]["forecast_visible"]) == set(forecast)
    assert set(metrics["world_model_stage"]["vpq"]["ego_warp"]["by_threshold"]) == {"0.5", "0.2"}
    assert metrics["forecast_comparison"]["comparisons"]
    assert 0.0 <= forecast["world_model"]["miou_avg"] <= 1.0
    assert metrics["tokenizer_stage"]["recon"]["iou"] > 0.0
    book = metrics["tokenizer_stage"]["codebook"]
    assert f"{book['codes_used']:.0f} of 128 codes used" in report
    for name in ("drone_camera.png", "rover_camera.png", "drone_lidar.png", "drone_occupancy_bev.png",
                 "losses.png", "forecast.gif", "plan_forecast.gif"):
        assert (out / "report" / name).stat().st_size > 1000, name
        assert f"({name})" in report
    assert (out / "checkpoints" / "best.pth").is_file() and (out / "checkpoints" / "tokenizer" / "best.pth").is_file()
    assert "main job done" in capsys.readouterr().out
