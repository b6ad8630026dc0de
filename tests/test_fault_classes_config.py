"""Issue 21, mistakes found after the work: one test per sub-class, through the real entry points. A config setting
whose range depends on another one, a session's meta.json field, a pose value: each stops `train.py`
(`occworld_tokyo.training.cli.main`) with exit 2 and one line naming the file and the key or field, before a step
or a checkpoint, and `occworld-tokyo validate` reports the same, never a traceback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from occworld_tokyo.config import CONFIG_DIR

ROOT = Path(__file__).resolve().parents[1]
TOK_CFG = ROOT / "config" / "tiny_test_vqvae.py"
FIN_CFG = ROOT / "config" / "tiny_test_finetune.py"


def _train(cfg: Path, work: Path, options: list[str], capsys) -> tuple[int, str]:
    from occworld_tokyo.training.cli import main

    code = main(["--config", str(cfg), "--work-dir", str(work), "--from-scratch", "--cfg-options", *options])
    return code, capsys.readouterr().err


def _no_work_done(work: Path, err: str) -> None:
    assert "Traceback" not in err and "train windows" not in err and " iter " not in err
    assert not work.exists() or not list(work.rglob("*.pth"))  # no checkpoint written


# ------------------------------------------------------------------------------------------------ config relations
@pytest.mark.parametrize("cfg, options, named", [
    (TOK_CFG, ["free_index=20"], "free_index = 20 must be below num_classes = 14"),
    (TOK_CFG, ["num_classes=10", "free_index=0"], "num_classes = 10 is smaller than the data's label table"),
    (FIN_CFG, ["future_frames=0"], "future_frames = 0 must be >= 1 for the world model"),
    (TOK_CFG, ["evaluation.agent_box=long"], "evaluation.agent_box = 'long' must be 3 numbers > 0"),
    (TOK_CFG, ["evaluation.agent_box=[4.0,-1.8,1.5]"], "evaluation.agent_box = [4.0, -1.8, 1.5] must be 3 numbers"),
    (TOK_CFG, ["model.vae.n_e=0"], "model.vae.n_e = 0 must be in [1, 1e+07]"),
    (TOK_CFG, ["model.vae.ch_mult=(1,0)"], "model.vae.ch_mult = (1, 0) must be a non-empty list of whole numbers"),
    (TOK_CFG, ["model.vae.grid_size=(32,32)"], "model.vae.grid_size = (32, 32) must be 3 whole numbers"),
    (FIN_CFG, ["model.transformer.embed_dim=6"], "model.transformer.embed_dim = 6 must equal model.vae.e_dim = 8"),
    (FIN_CFG, ["model.transformer.num_heads=3"], "model.transformer.num_heads = 3 must divide"),
    (FIN_CFG, ["model.transformer.num_frames=3"], "model.transformer.num_frames = 3 must be at least"),
    (FIN_CFG, ["model.pose_encoder.out_channels=16"], "model.pose_encoder.out_channels = 16 must equal"),
    (FIN_CFG, ["model.pose_encoder.in_channels=5"], "model.pose_encoder.in_channels = 5 must be 13"),
    (TOK_CFG, ["data.agent_types=['car']"], "data.agent_types = ['car']: each must be one of ['drone', 'rover']"),
    (TOK_CFG, ["lr_config.min_lr=0.1"], "lr_config.min_lr = 0.1 must not exceed optimizer.lr = 0.002"),
    (FIN_CFG, ["evaluation.voxel_copy=None"], "evaluation.fill_copy = 2.0 needs evaluation.voxel_copy"),
    (TOK_CFG, ["compile.enabled=True", "compile.backend=inductr"],
     "compile.backend = 'inductr' is not a torch.compile backend (did you mean 'inductor'?)"),
])
def test_settings_that_depend_on_each_other_are_checked_before_any_work(cfg: Path, options: list[str], named: str,
                                                                         tmp_path: Path, capsys) -> None:
    """The run stops while resolving the config: one line naming the file and the key, the work dir never made."""
    work = tmp_path / "work"
    code, err = _train(cfg, work, [f"data_root={tmp_path / 'data'}", *options], capsys)
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: "), err
    assert named in err and str(cfg) in err, err
    assert not work.exists()
    _no_work_done(work, err)


def test_the_shipped_configs_and_a_known_backend_pass_the_relations() -> None:
    from occworld_tokyo.config import check_compile, compile_backends, load_config, validate_config

    for path in sorted(CONFIG_DIR.glob("*.py")):
        validate_config(load_config(path), str(path))
    cfg = load_config(TOK_CFG)
    for backend in ("inductor", "eager", "aot_eager"):
        assert backend in compile_backends()
        check_compile({**cfg, "compile": {"enabled": True, "backend": backend}})
    check_compile({**cfg, "compile": {"enabled": False, "backend": "no_such_backend"}})  # unused: not checked


# ------------------------------------------------------------------------------------------------ session data
@pytest.fixture(scope="module")
def two_frames(tmp_path_factory) -> Path:
    """One hand-written session of 2 frames (test_dataset_sessions.write_session, the generator's format)."""
    from test_dataset_sessions import write_sessions

    return write_sessions(tmp_path_factory.mktemp("sessions") / "data", n_sessions=1, n_frames=2)


SESSION = "drone_20240101_120000"


def _copy(two_frames: Path, tmp_path: Path) -> Path:
    root = tmp_path / "data"
    shutil.copytree(two_frames, root)
    return root


def _validate(root: Path, capsys) -> tuple[int, str]:
    from occworld_tokyo.cli import main

    code = main(["validate", str(root)])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _edit_text(path: Path, old: str, new: bytes) -> None:
    raw = path.read_bytes()
    assert old.encode() in raw, (old, raw[:200])
    path.write_bytes(raw.replace(old.encode(), new, 1))


@pytest.mark.parametrize("old, new, field", [
    ('"rate_hz": 2.0', b'"rate_hz": 0', "field 'rate_hz' = 0 must be a number in (0, 1000]"),
    ('"rate_hz": 2.0', b'"rate_hz": NaN', "not valid JSON (NaN is not a JSON number)"),
    ('"rate_hz": 2.0', b'"rate_hz": "fast"', "field 'rate_hz' = 'fast' must be a number"),
    ('"n_frames": 2', b'"n_frames": 1e400', "field 'n_frames' = inf must be a whole number in 1..10000000"),
    ('"n_frames": 2', b'"n_frames": 2.0', "field 'n_frames' = 2.0 must be a whole number"),
    ('"n_frames": 2', b'"n_frames": 0', "field 'n_frames' = 0 must be a whole number"),
    ('"agent_type": "drone"', b'"agent_type": "dr\xffone"', "not UTF-8 text"),
    ('"voxel_size": [0.4, 0.4, 1.25]', b'"voxel_size": [0.4, 0.0, 1.25]', "field 'grid.voxel_size'"),
    ('"x_range": [-40.0, 40.0]', b'"x_range": [40.0, -40.0]', "field 'grid.x_range'"),
])
def test_every_field_of_meta_json_is_checked_when_read(two_frames: Path, old: str, new: bytes, field: str,
                                                       tmp_path: Path, capsys) -> None:
    root = _copy(two_frames, tmp_path)
    meta = root / SESSION / "meta.json"
    _edit_text(meta, old, new)
    work = tmp_path / "work"
    code, err = _train(TOK_CFG, work, [f"data_root={root}"], capsys)
    last = err.splitlines()[-1]
    assert code == 2 and last.startswith("error: ") and f"{meta}: {field}" in last, err
    assert "regenerate this session" in last
    _no_work_done(work, err)
    code, out = _validate(root, capsys)
    assert code == 1 and f"PROBLEM {meta}: {field}" in out and "Traceback" not in out, out


# ------------------------------------------------------------------------------------------------ pose values
@pytest.mark.parametrize("edit, field", [
    (lambda p: p["position"].update(x=1e300), "field 'position.x' = 1e+300 is outside -1e+06..1e+06 m"),
    (lambda p: p["velocity"]["linear"].update(y=5e4), "field 'velocity.linear.y' = 50000 is outside"),
    (lambda p: p["orientation"].update(w="1"), "field 'orientation.w' = '1' must be a finite number"),
    (lambda p: p["orientation"].update(w=0.5), "field 'orientation' is not a unit quaternion"),
    (lambda p: p.update(ground_height=True), "field 'ground_height' = True must be a finite number"),
    (lambda p: p.update(timestamp=float("inf")), "not valid JSON (Infinity is not a JSON number)"),
    (lambda p: p["velocity"].pop("angular"), "field 'velocity.angular' must be an object"),
])
def test_every_pose_value_is_checked_before_training(two_frames: Path, edit, field: str, tmp_path: Path,
                                                     capsys) -> None:
    from occworld_tokyo.dataset import DataError
    from occworld_tokyo.dataset.sessions import read_pose
    from occworld_tokyo.sessions import layout

    root = _copy(two_frames, tmp_path)
    pose_file = layout.pose_path(root / SESSION, 1)
    pose = json.loads(pose_file.read_text())
    edit(pose)
    pose_file.write_text(json.dumps(pose))  # json.dumps writes inf as Infinity, as a careless writer would
    work = tmp_path / "work"
    code, err = _train(TOK_CFG, work, [f"data_root={root}"], capsys)
    last = err.splitlines()[-1]
    assert code == 2 and last.startswith("error: ") and f"{pose_file}: {field}" in last, err
    assert "the training data has bad frames" in last and "Fix:" in last
    _no_work_done(work, err)
    with pytest.raises(DataError, match="regenerate") as exc:  # a read later (forecast, export) names it too
        read_pose(root / SESSION, 1)
    assert f"{pose_file}: {field}" in str(exc.value)
    code, out = _validate(root, capsys)
    assert code == 1 and f"PROBLEM {pose_file}: {field}" in out and "Traceback" not in out, out


def test_a_model_grid_that_does_not_fit_the_data_stops_before_the_data_check(tmp_path: Path, capsys,
                                                                             monkeypatch) -> None:
    """The grid check reads meta.json only: it runs before the check that reads every array of every frame (minutes
    on a city's sessions), so a wrong grid costs no wait."""
    import occworld_tokyo.dataset.preflight as preflight
    from test_dataset_sessions import write_sessions

    data = write_sessions(tmp_path / "data", n_sessions=2, n_frames=4)
    calls = []
    monkeypatch.setattr(preflight, "check_sessions", lambda *a, **k: calls.append(a) or "checked")
    work = tmp_path / "work"
    code, err = _train(TOK_CFG, work, [f"data_root={data}", "model.vae.grid_size=(48,48,8)"], capsys)
    assert code == 2 and "but model.vae.grid_size is (48, 48, 8)" in err, err
    assert not calls and "Traceback" not in err and not list(work.rglob("*.pth"))
