"""config/finetune_tokyo_occ3d.py and config/vqvae_tokyo_occ3d.py against the released OccWorld checkpoints'
names and shapes (../shared/reference): what loads from the released weights and what cannot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from occworld_tokyo.config import load_config
from occworld_tokyo.dataset.grid_select import select_grid
from occworld_tokyo.grid import OCC3D_GRID
from occworld_tokyo.model import build_model

ROOT = Path(__file__).resolve().parents[1]
REF = ROOT.parent / "shared" / "reference"
pytestmark = [pytest.mark.skipif(not (REF / "occworld_world_model_state_dict.json").is_file(),
                                 reason="reference JSON files not present"),
              pytest.mark.usefixtures("one_torch_thread")]


@pytest.mark.parametrize("config, ref, misfits", [
    ("config/finetune_tokyo_occ3d.py", "occworld_world_model_state_dict.json",
     {"vae.class_embeds.weight", "pose_encoder.pose_encoder.0.weight", "pose_decoder.pose_decoder.2.weight",
      "pose_decoder.pose_decoder.2.bias"}),
    ("config/vqvae_tokyo_occ3d.py", "occworld_vqvae_state_dict.json", {"class_embeds.weight"}),
])
def test_released_weights_fit_all_but_classes_and_pose_io(config, ref, misfits):
    cfg = load_config(ROOT / config)
    released = json.loads((REF / ref).read_text())["state_dict"]
    mine = {k: list(v.shape) for k, v in build_model(cfg["model"]).state_dict().items()}
    assert set(mine) == set(released)
    assert {k for k in mine if mine[k] != released[k]} == misfits
    sel = select_grid(cfg["point_cloud_range"], cfg["voxel_size"], stored=OCC3D_GRID)
    assert sel.shape == tuple(cfg["model"]["vae"]["grid_size"]) == (200, 200, 16)
