"""Issue 21, one test per class of the run side: the documented cluster layout (shards of one run sharing a folder,
two runs writing one session refused), folder claims naming their live holder, checkpoints checked whole on
resume, data checked in every array of every frame, environment faults as one line. Each is small and fast."""

from __future__ import annotations

import filecmp
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from occworld_tokyo.locks import LOCK_FILES, FolderBusyError, claim_folder, claim_names
from occworld_tokyo.sessions.generate import GenerationSpec, generate_sessions

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def city():
    from occworld_tokyo.citymodel.sample_city import load_sample_city
    from occworld_tokyo.world import build_voxel_world

    mesh = load_sample_city()
    return mesh, build_voxel_world(mesh, progress=False)


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _files(root: Path) -> list[Path]:
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())


# ------------------------------------------------------------------------------------------------ cluster layout
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="item claims are Linux OFD locks")
def test_shards_share_a_folder_and_two_runs_of_one_session_cannot(city, tmp_path: Path, capsys) -> None:
    """docs/city_scale.md's array jobs: while shard 0/2 writes (here a process holding exactly what a running shard
    holds), shard 1/2 writes into the same folder; an identical shard 0/2, or a shard of a run with another n that
    would write one of its sessions, exits 2 with one line before any work; together the shards give one run."""
    from occworld_tokyo.sessions.command import main as generate_main

    mesh, world = city
    out = tmp_path / "data"
    spec = dict(frames=2, sessions=4, sensors=False)
    names = GenerationSpec(**spec).names()
    script = ("import sys, time\nfrom occworld_tokyo.locks import claim_folder, claim_names\n"
              f"with claim_folder({str(out)!r}, 'session generation', shared=True, children_hold=True), "
              f"claim_names({str(out)!r}, {names[0::2]!r}, 'session', 'fix'):\n"
              "    print('held', flush=True)\n    time.sleep(300)\n")
    shard0 = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert shard0.stdout.readline().strip() == "held"
        report = generate_sessions(out, spec=GenerationSpec(**spec, shard=(1, 2)), progress=False, mesh=mesh,
                                   world=world)
        assert report.written == names[1::2]
        flags = ["--output", str(out), "--frames", "2", "--sessions", "4", "--no-sensors", "--quiet"]
        for shard, busy in (("0/2", names[0]), ("0/4", names[0]), ("2/4", names[2])):
            assert generate_main([*flags, "--shard", shard]) == 2
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and str(out / busy) in err and "being written by another run" in err
            assert f"pid {shard0.pid}" in err and "--shard" in err
        assert generate_main([*flags, "--shard", "0/2"]) == 2 and "(and 1 more of this run's)" in capsys.readouterr().err
        with pytest.raises(FolderBusyError, match="in use by another run"):  # the folder as a whole is not free
            with claim_folder(out, "test"):
                pass
    finally:
        shard0.kill()
        shard0.wait(timeout=60)
        shard0.stdout.close()
    report = generate_sessions(out, spec=GenerationSpec(**spec, shard=(0, 2)), progress=False, mesh=mesh, world=world)
    assert report.written == names[0::2] and report.skipped == []
    one = tmp_path / "one"
    generate_sessions(one, spec=GenerationSpec(**spec), progress=False, mesh=mesh, world=world)
    assert _files(out) == _files(one) and not any((out / name).exists() for name in LOCK_FILES)
    assert all(filecmp.cmp(one / rel, out / rel, shallow=False) for rel in _files(one))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="item claims are Linux OFD locks")
def test_named_claims_are_exclusive_per_name_and_need_the_shared_folder_claim(tmp_path: Path) -> None:
    with claim_folder(tmp_path, "test", shared=True), claim_names(tmp_path, ["a", "b"], "session", "Fix it."):
        with claim_folder(tmp_path, "test", shared=True):  # another shared claimant: fine
            with claim_names(tmp_path, ["c"], "session", "Fix it."):
                pass
            with pytest.raises(FolderBusyError, match=r"/b is being written by another run .*Fix it\."):
                with claim_names(tmp_path, ["c", "b"], "session", "Fix it."):
                    pass
            with claim_names(tmp_path, ["c"], "session", "Fix it."):  # the refused claim kept nothing
                pass
        with pytest.raises(FolderBusyError, match="in use by another run"):
            with claim_folder(tmp_path, "test"):
                pass
    with claim_folder(tmp_path, "test"):  # the last one out removed the lock file
        assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="item claims are Linux OFD locks")
def test_an_identical_run_beside_a_writing_run_stops_at_once_untouched(tmp_path: Path, capsys) -> None:
    """A real generation run writing; the same command again exits 2 naming the session and the writer's pid, and
    leaves the writer's temporary session as it was (a second run never clears what another one writes)."""
    import time

    from occworld_tokyo.sessions.command import main as generate_main

    out = tmp_path / "data"
    flags = ["generate", "--output", str(out), "--frames", "400", "--sessions", "2", "--shard", "0/2",
             "--no-sensors", "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "occworld_tokyo.cli", *flags], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240  # a bound on waiting for the run to start writing, not a timing assertion
        while proc.poll() is None and time.monotonic() < deadline:
            if out.is_dir() and any(p.name.startswith(".tmp_") and any(p.rglob("*.npz")) for p in out.iterdir()):
                break
            time.sleep(0.1)
        assert proc.poll() is None, proc.stderr.read().decode()
        tmp = next(p for p in out.iterdir() if p.name.startswith(".tmp_"))
        before = {p.name for p in (tmp / "occupancy").iterdir()}
        assert generate_main(flags[1:]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"{out / tmp.name[len('.tmp_'):]} is being written" in err
        assert f"pid {proc.pid}" in err
        assert tmp.is_dir() and before <= {p.name for p in (tmp / "occupancy").iterdir()}
    finally:
        proc.kill()
        proc.wait(timeout=60)
        proc.stderr.close()


# ------------------------------------------------------------------------------------------------ processes
def test_a_claim_held_by_a_child_of_an_ended_run_names_the_child(tmp_path: Path) -> None:
    """The process that took a claim has ended and its forked child (a generation worker) still holds it: the
    message names the live child's pid and says the run ended, instead of 'another process'."""
    script = ("import os, sys, time\nfrom occworld_tokyo.locks import claim_folder\n"
              f"with claim_folder({str(tmp_path / 'w')!r}, 'test', children_hold=True):\n"
              "    pid = os.fork()\n    if pid == 0:\n        null = os.open(os.devnull, os.O_WRONLY)\n"
              "        os.dup2(null, 1)\n        os.dup2(null, 2)\n        time.sleep(60)\n        os._exit(0)\n"
              "    print(os.getpid(), pid, flush=True)\n    os._exit(0)\n")
    parent = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT)
    run, child = (int(v) for v in parent.stdout.split())
    try:
        assert _alive(child) and not _alive(run)
        with pytest.raises(FolderBusyError) as exc:
            with claim_folder(tmp_path / "w", "test"):
                pass
        text = str(exc.value)
        assert f"pid {child}: " in text and f"pid {run}, ended" in text and "another process" not in text
    finally:
        os.kill(child, signal.SIGKILL)


# ------------------------------------------------------------------------------------------------ whole checkpoints
TOK_CFG = ROOT / "config" / "tiny_test_vqvae.py"


def _trained_payload() -> dict:
    """A tokenizer checkpoint as a run writes it: AdamW moments after one real step, RNG states, position."""
    import torch

    from occworld_tokyo.config import load_config
    from occworld_tokyo.model import build_model
    from occworld_tokyo.training.checkpoint import capture_rng

    torch.manual_seed(0)
    model = build_model(load_config(TOK_CFG)["model"])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    sum(p.float().pow(2).sum() for p in model.parameters()).backward()
    opt.step()
    return {"state_dict": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": {"last_iter": 1},
            "epoch": 1, "global_iter": 1, "iter_in_epoch": 0, "rng": [capture_rng()], "best_val_loss": 2.0,
            "best_epoch": 1, "stage": "tokenizer", "scaler": {}}


def _first_moment(ckpt: dict):
    return next(v["exp_avg"] for v in ckpt["optimizer"]["state"].values())


def _edit(ckpt: dict, how: str) -> None:
    import torch

    from occworld_tokyo.training.checkpoint import part_checksum

    resign = True  # the edit keeps the part checksums consistent: only the range / shape / finite checks see it
    if how == "moments changed":
        _first_moment(ckpt).add_(1e-3)
        resign = False
    elif how == "NaN moments":
        _first_moment(ckpt).fill_(float("nan"))
    elif how == "RNG of another shape":
        ckpt["rng"][0]["python"] = ckpt["rng"][0]["python"][:100]
    elif how == "RNG bytes changed":
        ckpt["rng"][0]["torch"][7] ^= 1
        resign = False
    elif how == "RNG out of range":
        ckpt["rng"][0]["numpy_meta"] = torch.tensor([900, 0])
    elif how == "negative epoch":
        ckpt["epoch"] = -5
    elif how == "negative epoch, older file":
        ckpt["epoch"] = -5
        del ckpt["part_checksums"]
        return
    elif how == "best after the end":
        ckpt["best_epoch"] = 4
    elif how == "scheduler dropped":
        del ckpt["scheduler"]
        resign = False
    if resign:
        ckpt["part_checksums"] = {k: part_checksum(ckpt[k]) for k in ckpt["part_checksums"] if k in ckpt}


@pytest.mark.parametrize("how, message", [
    ("moments changed", "'optimizer' fails its checksum"), ("NaN moments", "optimizer state holds NaN/Inf"),
    ("RNG of another shape", "'rng[0]' has 'python' of torch.int64 (100,)"),
    ("RNG bytes changed", "'rng' fails its checksum"), ("RNG out of range", "'rng[0]' holds a numpy generator"),
    ("negative epoch", "'epoch' = -5 must be a whole number >= 0"),
    ("negative epoch, older file", "'epoch' = -5 must be a whole number >= 0"),
    ("best after the end", "'best_epoch' = 4 is after 'epoch' = 1"),
    ("scheduler dropped", "key 'scheduler' is missing"),
])
def test_every_part_of_a_checkpoint_is_checked_before_resume(how: str, message: str, tmp_path: Path) -> None:
    import torch

    from occworld_tokyo.model import CheckpointError
    from occworld_tokyo.training import checkpoint as ckpt_io

    good = ckpt_io.save_checkpoint(tmp_path / "latest.pth", _trained_payload())
    ckpt = torch.load(good, weights_only=True)
    assert ckpt_io.load_checkpoint(good)["epoch"] == 1 and set(ckpt["part_checksums"]) >= {"optimizer", "rng", "epoch"}
    _edit(ckpt, how)
    torch.save(ckpt, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError) as exc:
        ckpt_io.load_checkpoint(tmp_path / "bad.pth")
    text = str(exc.value)
    assert message in text and str(tmp_path / "bad.pth") in text and "--resume-from" in text and "\n" not in text


def test_a_diverged_state_is_never_written_over_the_last_good_checkpoint(tmp_path: Path) -> None:
    from occworld_tokyo.model import CheckpointError
    from occworld_tokyo.training import checkpoint as ckpt_io

    payload = _trained_payload()
    path = ckpt_io.save_checkpoint(tmp_path / "latest.pth", payload)
    before = path.read_bytes()
    _first_moment(payload).fill_(float("inf"))
    with pytest.raises(CheckpointError, match=r"latest.pth was not written: 1 tensor\(s\) hold NaN/Inf .*kept"):
        ckpt_io.save_checkpoint(path, payload)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["latest.pth"]


def test_resume_from_an_edited_checkpoint_is_one_line_before_training(tmp_path: Path, capsys) -> None:
    import torch

    from occworld_tokyo.training import checkpoint as ckpt_io
    from occworld_tokyo.training.cli import main
    from test_dataset_sessions import write_sessions

    root = write_sessions(tmp_path / "data", n_sessions=2, n_frames=6)
    ckpt = torch.load(ckpt_io.save_checkpoint(tmp_path / "c.pth", _trained_payload()), weights_only=True)
    _edit(ckpt, "negative epoch")
    torch.save(ckpt, tmp_path / "c.pth")
    work = tmp_path / "w"
    assert main(["--config", str(TOK_CFG), "--work-dir", str(work), "--resume-from", str(tmp_path / "c.pth"),
                 "--cfg-options", f"data_root={root}"]) == 2
    err = capsys.readouterr().err  # the run's log goes to stderr too: the error is its one last line
    last = err.splitlines()[-1]
    assert last.startswith("error: ") and "'epoch' = -5" in last and str(tmp_path / "c.pth") in last
    assert "Traceback" not in err and "resumed from" not in err
    assert not list(work.glob("*.pth"))  # nothing trained, nothing written


# ------------------------------------------------------------------------------------------------ whole frames
def _set_central_crc(npz: Path, member: str) -> None:
    """Change the CRC-32 the zip's central directory records for `member` (its data stay readable)."""
    data = bytearray(npz.read_bytes())
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        name_len = int.from_bytes(data[at + 28:at + 30], "little")
        if data[at + 46:at + 46 + name_len].decode() == member:
            data[at + 16] ^= 0xFF
            npz.write_bytes(bytes(data))
            return
        at = data.find(b"PK\x01\x02", at + 4)
    raise AssertionError(f"{member} not in {npz}")


@pytest.mark.parametrize("member, visibility", [("instances.npy", None), ("mask_camera.npy", None),
                                                ("mask_camera.npy", "camera"), ("occupancy.npy", None)])
def test_every_array_of_every_frame_is_read_in_full_before_training(member: str, visibility, tmp_path: Path) -> None:
    from occworld_tokyo.dataset import DataError, find_sessions
    from occworld_tokyo.dataset.preflight import check_sessions
    from occworld_tokyo.sessions import layout
    from occworld_tokyo.sessions.validate import check_session
    from test_dataset_sessions import write_sessions

    sessions = find_sessions(write_sessions(tmp_path / "data", n_sessions=2, n_frames=4))
    assert "8 frames ok" in check_sessions(sessions, with_instances=False, visibility=visibility)
    bad = layout.occupancy_path(sessions[1].path, 3)  # the last frame of the last session
    _set_central_crc(bad, member)
    with pytest.raises(DataError) as exc:
        check_sessions(sessions, with_instances=False, visibility=visibility)
    text = str(exc.value)
    assert f"{bad}: array '{member}' unreadable" in text and "CRC" in text and "Fix:" in text
    assert any(str(bad) in p and member in p for p in check_session(sessions[1].path).problems)


def test_a_damaged_array_read_later_names_its_file(tmp_path: Path) -> None:
    from occworld_tokyo.dataset import DataError
    from occworld_tokyo.dataset.sessions import read_occupancy
    from occworld_tokyo.sessions import layout
    from test_dataset_sessions import write_sessions

    session = write_sessions(tmp_path / "data", n_sessions=1, n_frames=2) / "drone_20240101_120000"
    path = layout.occupancy_path(session, 1)
    data = bytearray(path.read_bytes())
    data[len(data) // 3: len(data) // 3 + 64] = bytes(64)  # garbage inside a deflate stream
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match=f"{path}: unreadable .*regenerate"):
        read_occupancy(session, 1, ("occupancy", "instances", "mask_lidar", "mask_camera"))


def test_a_session_linked_to_another_is_one_session(tmp_path: Path) -> None:
    from occworld_tokyo.dataset import find_sessions
    from occworld_tokyo.dataset.windows import split_sessions
    from occworld_tokyo.sessions.validate import validate
    from test_dataset_sessions import write_sessions

    root = write_sessions(tmp_path / "data", n_sessions=2, n_frames=8)
    (root / "drone_20240101_110000").symlink_to(root / "drone_20240101_120000", target_is_directory=True)
    (root / "rover_20240101_130000").symlink_to(root / "rover_20240101_120001", target_is_directory=True)
    sessions = find_sessions(root)
    assert [s.name for s in sessions] == ["drone_20240101_120000", "rover_20240101_120001"]
    split = split_sessions(sessions, 0.5, seed=0, window=4)
    assert {p.session.path.resolve() for p in split.train}.isdisjoint({p.session.path.resolve() for p in split.val})
    checks, folder_problems = validate(root)
    assert len(checks) == 2 and sum("the same folder as" in p for p in folder_problems) == 2


# ------------------------------------------------------------------------------------------------ environment
def test_a_full_disk_during_a_checkpoint_is_one_line_and_keeps_the_last_one(tmp_path: Path, monkeypatch) -> None:
    """The temporary file is opened on /dev/full: every write fails with the kernel's ENOSPC, as on a full disk."""
    from occworld_tokyo.model import CheckpointError
    from occworld_tokyo.training import checkpoint as ckpt_io

    path = ckpt_io.save_checkpoint(tmp_path / "latest.pth", _trained_payload())
    before = path.read_bytes()
    fake = tmp_path / ".latest.pth.full.tmp"

    def full_disk(prefix: str, suffix: str, dir) -> tuple[int, str]:
        fake.write_bytes(b"")
        return os.open("/dev/full", os.O_WRONLY), str(fake)

    monkeypatch.setattr(ckpt_io.tempfile, "mkstemp", full_disk)
    with pytest.raises(CheckpointError) as exc:
        ckpt_io.save_checkpoint(path, _trained_payload())
    text = str(exc.value)
    assert text.startswith(f"cannot write checkpoint {path} (No space left on device)") and "disk is full" in text
    assert "GB free" in text and "--resume" in text and "\n" not in text
    assert isinstance(exc.value.__cause__, OSError)  # raised from the first error, not torch's second one
    assert path.read_bytes() == before and not fake.exists()


def test_temporaries_of_a_killed_save_are_removed(tmp_path: Path) -> None:
    from occworld_tokyo.training import checkpoint as ckpt_io

    left = [tmp_path / ".epoch_3.pth.k1ll3d.tmp", tmp_path / ".latest.pth.x7.tmp"]
    for p in left:
        p.write_bytes(b"half a checkpoint")
    (tmp_path / "notes.tmp").write_text("not ours")
    ckpt_io.save_checkpoint(tmp_path / "latest.pth", _trained_payload())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.pth", "notes.tmp"]


@pytest.fixture
def read_only(monkeypatch):
    """Folders made read-only as a read-only mount makes them (also for root): creating a file there fails with
    EROFS. Returns the set to add folders to."""
    import errno
    import tempfile

    folders: set[Path] = set()
    real = tempfile.TemporaryFile

    def temporary_file(*args, dir=None, **kwargs):
        if dir is not None and Path(dir).resolve() in {f.resolve() for f in folders}:
            raise OSError(errno.EROFS, "Read-only file system", str(dir))
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "TemporaryFile", temporary_file)
    return folders


def test_a_read_only_folder_is_one_line_before_any_work(tmp_path: Path, read_only, capsys) -> None:
    from occworld_tokyo.sessions.command import main as generate_main
    from occworld_tokyo.training.cli import main as train_main
    from occworld_tokyo.viewer.command import main as view_main
    from test_dataset_sessions import write_sessions

    root = write_sessions(tmp_path / "data", n_sessions=2, n_frames=6)
    for name in ("work", "out", "rrd"):
        (tmp_path / name).mkdir()
        read_only.add(tmp_path / name)
    assert train_main(["--config", str(TOK_CFG), "--work-dir", str(tmp_path / "work"),
                       "--cfg-options", f"data_root={root}"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == (f"error: {tmp_path / 'work'} is not writable (Read-only file system), and the "
                                    "training run writes there: choose a folder you can write, or fix its permissions "
                                    "or mount") and "Traceback" not in err
    assert generate_main(["--output", str(tmp_path / "out"), "--frames", "2", "--sessions", "1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{tmp_path / 'out'} is not writable" in err
    assert view_main([str(root / "drone_20240101_120000"), "--save", str(tmp_path / "rrd" / "s.rrd")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--save {tmp_path / 'rrd' / 's.rrd'}" in err and "not writable" in err
    assert all(list((tmp_path / name).iterdir()) == [] for name in ("work", "out", "rrd"))


def _world_model_checkpoint(path: Path) -> Path:
    import json

    from occworld_tokyo.config import load_config
    from occworld_tokyo.model import build_model
    from occworld_tokyo.training import checkpoint as ckpt_io

    cfg = load_config(ROOT / "config" / "tiny_test_finetune.py")
    model = build_model(cfg["model"])
    return ckpt_io.save_checkpoint(path, {"state_dict": model.state_dict(), "optimizer": {}, "scheduler": {},
                                          "epoch": 1, "global_iter": 1, "stage": "world_model",
                                          "config_json": json.dumps(cfg, default=str)})


def test_forecast_on_a_damaged_session_names_the_file(tmp_path: Path, capsys) -> None:
    from occworld_tokyo.cli import main
    from occworld_tokyo.sessions import layout
    from test_dataset_sessions import write_sessions

    ckpt = _world_model_checkpoint(tmp_path / "best.pth")
    session = write_sessions(tmp_path / "data", n_sessions=1, n_frames=12) / "drone_20240101_120000"
    bad = layout.occupancy_path(session, 1)
    data = bytearray(bad.read_bytes())
    data[len(data) // 3: len(data) // 3 + 64] = bytes(64)
    bad.write_bytes(bytes(data))
    assert main(["forecast", "--checkpoint", str(ckpt), "--session", str(session), "--start", "0",
                 "--out", str(tmp_path / "f")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{bad}: unreadable" in err and "regenerate" in err


def test_pickled_checkpoints_get_advice_that_exists(tmp_path: Path, capsys) -> None:
    import argparse

    import torch

    from occworld_tokyo.cli import main
    from occworld_tokyo.model import CheckpointError
    from occworld_tokyo.training import checkpoint as ckpt_io

    torch.save({"state_dict": {}, "args": argparse.Namespace(lr=1)}, tmp_path / "pickled.pth")
    with pytest.raises(CheckpointError) as exc:
        ckpt_io.load_checkpoint(tmp_path / "pickled.pth")
    assert "pickled Python objects" in str(exc.value) and "allow-pickle" not in str(exc.value)
    session = tmp_path / "s"
    session.mkdir()
    assert main(["forecast", "--checkpoint", str(tmp_path / "pickled.pth"), "--session", str(session),
                 "--out", str(tmp_path / "f")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pickled" in err and "allow-pickle" not in err


@pytest.mark.parametrize("edit, message", [
    (lambda cfg: cfg["model"]["vae"].update(ch=4096), "describes another model than its weights"),
    (lambda cfg: cfg.update(grad_clip={"max_norm": -1.0}), "grad_clip.max_norm = -1.0"),
    (lambda cfg: cfg["model"].update(type="NoSuchModel"), "model.type = 'NoSuchModel' must be one of"),
    (lambda cfg: cfg["model"]["vae"].update(bogus=1), "cannot be built (TypeError: VAERes2D: unknown config keys"),
    (None, "is not JSON"),
])
def test_a_stored_config_is_checked_before_a_model_is_built(edit, message: str, tmp_path: Path) -> None:
    import json

    import torch

    from occworld_tokyo.model import CheckpointError
    from occworld_tokyo.training import checkpoint as ckpt_io

    ckpt = torch.load(_world_model_checkpoint(tmp_path / "best.pth"), weights_only=True)
    model, cfg = ckpt_io.build_stored_model(ckpt, tmp_path / "best.pth")
    assert cfg["model"]["type"] and sum(p.numel() for p in model.parameters()) > 0
    if edit is None:
        ckpt["config_json"] = ckpt["config_json"][:-7]
    else:
        edit(cfg)
        ckpt["config_json"] = json.dumps(cfg)
    with pytest.raises(CheckpointError) as exc:
        ckpt_io.build_stored_model(ckpt, tmp_path / "best.pth")
    assert message in str(exc.value) and str(tmp_path / "best.pth") in str(exc.value)
