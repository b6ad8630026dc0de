"""Checkpoint parity with the released OccWorld: names and shapes of config/occworld_nuscenes.py against
../shared/reference/*.json, strict loading of a released-format file, load_pretrained (prefixes, partial
transfer into the Tokyo config, refusals)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from occworld_tokyo.config import load_config
from occworld_tokyo.model import (CheckpointError, TokenizerNotTrainedError, build_model, check_tokenizer_trained,
                                  checkpoint_metadata, load_pretrained, mark_tokenizer_trained, tiny_model_config)
from occworld_tokyo.model import summary

ROOT = Path(__file__).resolve().parents[1]
REF = ROOT.parent / "shared" / "reference"
WORLD_JSON, VQVAE_JSON = REF / "occworld_world_model_state_dict.json", REF / "occworld_vqvae_state_dict.json"
pytestmark = [pytest.mark.skipif(not WORLD_JSON.is_file(), reason="reference JSON files not present"),
              pytest.mark.usefixtures("one_torch_thread")]


def _ref(path: Path) -> dict:
    return json.loads(path.read_text())


def _listing(model) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in model.state_dict().items()}


def _released_file(path: Path, shapes: dict[str, list[int]], prefix: str = "", seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    state = {prefix + k: torch.randn(*s, generator=g) for k, s in shapes.items()}
    torch.save({"state_dict": state, "optimizer": {"state": {}, "param_groups": [{"lr": 1e-3}]},
                "scheduler": {"last_epoch": 3}, "epoch": 200, "global_iter": 12345}, path)
    return state


@pytest.fixture(scope="module")
def nuscenes_model():
    torch.manual_seed(0)
    return build_model(load_config(ROOT / "config/occworld_nuscenes.py")["model"])


def test_world_model_parity(nuscenes_model):
    ref = _ref(WORLD_JSON)
    mine = _listing(nuscenes_model)
    assert mine == ref["state_dict"]
    assert len(mine) == ref["tensors"] == 768
    assert sum(v.numel() for v in nuscenes_model.state_dict().values()) == ref["parameters"] == 72_385_578
    assert sum(p.numel() for p in nuscenes_model.trainable_parameters()) == 58_217_306  # VAE frozen in stage 2


def test_tokenizer_parity():
    cfg = load_config(ROOT / "config/occworld_nuscenes.py")
    vae = build_model({**cfg["model"], "type": "VAERes2D"})
    ref = _ref(VQVAE_JSON)
    assert _listing(vae) == ref["state_dict"]
    assert len(ref["state_dict"]) == 222
    assert sum(v.numel() for v in vae.state_dict().values()) == ref["parameters"] == 14_168_272


def test_summary_json_matches_reference(capsys):
    assert summary.main(["--config", str(ROOT / "config/occworld_nuscenes.py"), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    ref = _ref(WORLD_JSON)
    assert printed == {"state_dict": ref["state_dict"], "parameters": ref["parameters"]}
    assert summary.main(["--config", str(ROOT / "config/_base_/model_tokyo.py")]) == 0
    text = capsys.readouterr().out
    assert "vae.encoder.conv_in.weight" in text and "[64, 968, 3, 3]" in text and "total" in text


def test_released_format_file_loads_strictly(nuscenes_model, tmp_path):
    path = tmp_path / "latest.pth"
    state = _released_file(path, _ref(WORLD_JSON)["state_dict"])
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    assert set(ckpt) == {"state_dict", "optimizer", "scheduler", "epoch", "global_iter"}
    result = nuscenes_model.load_state_dict(ckpt["state_dict"], strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    name = "transformer.temporal_attentions_de.0.3.0.in_proj_weight"
    assert torch.equal(nuscenes_model.state_dict()[name], state[name])

    # the same file with DDP / torch.compile prefixes through load_pretrained
    prefixed = tmp_path / "prefixed.pth"
    state = _released_file(prefixed, _ref(WORLD_JSON)["state_dict"], prefix="module._orig_mod.", seed=1)
    logs: list[str] = []
    report = load_pretrained(nuscenes_model, prefixed, log=logs.append)
    assert len(report.loaded) == 768 and not report.mismatched and not report.missing and not report.unexpected
    assert torch.equal(nuscenes_model.state_dict()[name], state["module._orig_mod." + name])
    assert report.tokenizer_grid == (200, 200, 16, 18)  # a complete tokenizer counts as trained for its grid
    check_tokenizer_trained(nuscenes_model)
    assert any("transformer" in line for line in logs)


def test_partial_transfer_into_tokyo_reports_mismatches(tmp_path):
    path = tmp_path / "vqvae.pth"
    _released_file(path, _ref(VQVAE_JSON)["state_dict"])  # VQVAE-stage keys (no `vae.` prefix)
    torch.manual_seed(0)
    model = build_model(load_config(ROOT / "config/_base_/model_tokyo.py")["model"])
    before = model.vae.encoder.conv_in.weight.clone()
    report = load_pretrained(model, path, log=lambda s: None)
    mismatched = {name for name, _, _ in report.mismatched}
    assert {"vae.encoder.conv_in.weight", "vae.decoder.conv_out.weight", "vae.class_embeds.weight",
            "vae.vqvae.embedding.weight", "vae.encoder.conv_out.weight"} <= mismatched
    assert "vae.encoder.down.0.block.0.conv1.weight" in report.loaded
    assert "vae.decoder.up.2.attn.1.q.weight" in report.loaded
    assert torch.equal(model.vae.encoder.conv_in.weight, before)  # mismatched tensors untouched
    assert report.modules["transformer"].missing and not report.modules["transformer"].loaded
    assert report.tokenizer_grid is None
    with pytest.raises(TokenizerNotTrainedError):
        check_tokenizer_trained(model)
    assert "shape mismatch vae.encoder.conv_in.weight" in report.table()


def test_nothing_loaded_is_an_error(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"state_dict": {"foo.weight": torch.zeros(3)}}, path)
    with pytest.raises(CheckpointError, match="nothing"):
        load_pretrained(build_model(tiny_model_config()), path, log=lambda s: None)


def test_missing_file_names_the_download_command(tmp_path):
    with pytest.raises(CheckpointError) as info:
        load_pretrained(build_model(tiny_model_config()), tmp_path / "pretrained/occworld/latest.pth")
    assert ("mkdir -p pretrained/occworld && curl -L -o pretrained/occworld/latest.pth "
            "'https://cloud.tsinghua.edu.cn/d/ff4612b2453841fba7a5/files/?p=/latest.pth&dl=1'") in str(info.value)


class _Pickled:  # any non-allowlisted Python object forces pickle
    pass


def test_pickled_file_needs_opt_in(tmp_path):
    model = build_model(tiny_model_config())
    path = tmp_path / "pickled.pth"
    torch.save({"state_dict": model.state_dict(), "cfg": _Pickled()}, path)
    with pytest.raises(CheckpointError, match="--allow-pickle"):
        load_pretrained(model, path, log=lambda s: None)
    report = load_pretrained(model, path, allow_pickle=True, log=lambda s: None)
    assert len(report.loaded) == len(model.state_dict())


def test_tokenizer_provenance_roundtrip(tmp_path):
    torch.manual_seed(0)
    vae = build_model({**tiny_model_config(), "type": "VAERes2D"})
    mark_tokenizer_trained(vae)
    path = tmp_path / "vqvae_tokyo.pth"
    torch.save({"state_dict": vae.state_dict(), "meta": checkpoint_metadata(vae)}, path)
    world = build_model(tiny_model_config())
    with pytest.raises(TokenizerNotTrainedError):
        check_tokenizer_trained(world)
    report = load_pretrained(world, path, log=lambda s: None)
    assert report.modules["vae.encoder"].loaded and report.modules["transformer"].missing
    assert torch.equal(world.vae.vqvae.embedding.weight, vae.vqvae.embedding.weight)
    check_tokenizer_trained(world)
    # a project checkpoint of a tokenizer that was never trained does not count
    torch.save({"state_dict": vae.state_dict(), "meta": {"tokenizer_grid": None}}, path)
    world = build_model(tiny_model_config())
    load_pretrained(world, path, log=lambda s: None)
    with pytest.raises(TokenizerNotTrainedError):
        check_tokenizer_trained(world)
    # a file whose meta says another grid does not count
    torch.save({"state_dict": vae.state_dict(), "meta": {"tokenizer_grid": [64, 64, 8, 14]}}, path)
    world = build_model(tiny_model_config())
    load_pretrained(world, path, log=lambda s: None)
    with pytest.raises(TokenizerNotTrainedError):
        check_tokenizer_trained(world)


def test_model_command_shows_what_the_release_gives_the_tokyo_config(tmp_path, capsys):
    """docs/model.md "Fine-tuning from the release": the tokenizer trunk loads, its ends, the codebook, the
    transformer (but 9 shape-coincident tensors) and the pose MLPs start fresh."""
    path = tmp_path / "latest.pth"
    _released_file(path, _ref(WORLD_JSON)["state_dict"])
    assert summary.main(["--config", str(ROOT / "config/finetune_tokyo.py"), "--pretrained", str(path)]) == 0
    table = capsys.readouterr().out.split("tensors loaded")[1]
    rows = {line.split()[0]: line.split()[1:] for line in table.strip().splitlines()[1:]}
    assert rows["vae.encoder"] == ["105", "3", "6,112,768", "705,088"]
    assert rows["vae.decoder"] == ["105", "3", "7,219,264", "705,992"]
    assert rows["vae.vqvae"][:2] == ["0", "5"] and rows["vae.class_embeds"][:2] == ["0", "1"]
    assert rows["transformer"][:2] == ["9", "529"]
    assert rows["pose_encoder"][:2] == ["0", "4"] and rows["pose_decoder"][:2] == ["0", "4"]
    assert rows["total"] == ["219", "549", "13,345,044", "16,989,957"]
