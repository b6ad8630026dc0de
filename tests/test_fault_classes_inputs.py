"""Issue 21, one test per class of the generation side: flags and plans taken wrongly, hostile archives and files,
re-runs that mix settings, processes that outlive their run, shards sharing a folder. Each is small and fast."""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import struct
import zipfile
from pathlib import Path

import pytest

from occworld_tokyo.citymodel import index_command, sample_city_command
from occworld_tokyo.citymodel.errors import CityModelError
from occworld_tokyo.citymodel.meshcode import Region, parse_region
from occworld_tokyo.citymodel.sources import discover
from occworld_tokyo.dataset.plan_file import PlanFileError, read_plan
from occworld_tokyo.sessions import command as generate_command
from occworld_tokyo.sessions.generate import GenerationError, GenerationSpec

# ------------------------------------------------------------------------------------------------ flags and plans
COMMANDS = {"generate": generate_command, "index": index_command, "sample-city": sample_city_command}
# options that take free text: paths only (anything else that takes a value must have a checking type or choices)
PATH_OPTIONS = {"--input", "--output", "--cache", "--out"}
HOSTILE = ["nan", "inf", "-inf", "-1", "1e300", "abc", "", "2.5e", "0x10"]
REQUIRED = {"index": ["--input", "x"], "sample-city": ["--size-km", "1", "--out", "o"]}


def _value_options(parser: argparse.ArgumentParser):
    for action in parser._actions:  # noqa: SLF001 - argparse exposes its options only here
        if action.option_strings and action.nargs != 0 and not isinstance(action, argparse._HelpAction):
            yield action


@pytest.mark.parametrize("name", COMMANDS)
def test_every_value_flag_is_checked_when_read(name: str) -> None:
    for action in _value_options(COMMANDS[name].build_parser()):
        flag = action.option_strings[-1]
        assert action.type is not None or action.choices or flag in PATH_OPTIONS, (
            f"{name} {flag} takes free text: give it a type that checks it (occworld_tokyo/flags.py) or choices")


@pytest.mark.parametrize("name", COMMANDS)
def test_hostile_values_of_every_typed_flag_exit_2_naming_it(name: str, tmp_path: Path, capsys,
                                                             monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    parser = COMMANDS[name].build_parser()
    for action in _value_options(parser):
        if action.type is None:
            continue
        flag = action.option_strings[-1]
        for value in HOSTILE:
            if value in ("-1",) and flag == "--region":
                continue  # a negative number would be read as an option name: argparse refuses it the same way
            try:
                parsed = action.type(value)
            except (argparse.ArgumentTypeError, ValueError, TypeError):
                parsed = None
            if parsed is not None:  # accepted: only where the value is a sensible one
                assert isinstance(parsed, (int, float)) and math.isfinite(parsed), (flag, value, parsed)
                continue
            with pytest.raises(SystemExit) as exc:
                COMMANDS[name].main([*REQUIRED.get(name, []), f"{flag}={value}"])
            err = capsys.readouterr().err
            assert exc.value.code == 2 and err.count("\n") == 1 and flag in err, (flag, value, err)
    assert list(tmp_path.iterdir()) == []  # nothing was created


@pytest.mark.parametrize("text, message", [
    ("36,140,35,139", "lat_min < lat_max"),                      # swapped box: not read as mesh codes
    ("139.69,35.68,139.71,35.70", "looks like lon,lat"),
    ("35.68,139.69,35.70", "is not a 4-, 6- or 8-digit mesh code"),
    ("5339,35.6", "is not a 4-, 6- or 8-digit mesh code"),
    ("53394525,", "empty item"),
    ("533985", "5th and 6th digits"),
    ("35.6,139.6,nan,139.8", "finite"),
    ("35,139,1e300,140", "must lie in Japan"),
])
def test_region_values_are_refused_naming_the_mistake(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_region(text)
    with pytest.raises(GenerationError, match=message):
        GenerationSpec(region=text)


def test_region_forms_are_read_as_meant() -> None:
    assert parse_region("5339, 533945,53394525") == Region(codes=("5339", "533945", "53394525"))
    assert parse_region("5339,5340,5239,5240") == Region(codes=("5339", "5340", "5239", "5240"))  # 4 codes, no box
    assert parse_region("35,139,36,140") == Region(box=(35.0, 139.0, 36.0, 140.0))  # whole degrees are a box


@pytest.mark.parametrize("field, value", [("region_size", float("nan")), ("region_size", 1e300), ("seed", -1),
                                          ("frames", True), ("rate_hz", float("inf")), ("sessions", 2.0),
                                          ("shard", (1, 1)), ("shard", (0, 0)), ("shard", "0/2")])
def test_library_specs_refuse_what_the_flags_refuse(field: str, value) -> None:
    with pytest.raises(GenerationError, match="--"):
        GenerationSpec(**{field: value})


def _record(x: float, y: float) -> dict:
    return {"position": {"x": x, "y": y, "z": 5.0}, "orientation": {"x": 0.0, "y": 0.0, "z": 0.0, "w": 1.0},
            "velocity": {"linear": {"x": 0.0, "y": 0.0, "z": 0.0}, "angular": {"x": 0.0, "y": 0.0, "z": 0.0}}}


HISTORY = [_record(0.0, 0.0), _record(1.0, 0.0)]


@pytest.mark.parametrize("text, message", [
    ('{"frame": "ego", "waypoints": [[1000, 0, 0], [2000, 0, 0]]}', r"waypoints\[0\] is 1000 m .* metres"),  # mm
    ('{"frame": "ego", "waypoints": [[1, 0, 0], [1e300, 0, 0]]}', r"waypoints\[1\] is 1e\+300 m"),
    ('{"frame": "ego", "waypoints": [[1, 0, 0], [Infinity, 0, 0]]}', "Infinity is not a number JSON allows"),
    ('{"frame": "ego", "waypoints": [[1, 0, 0], [NaN, 0, 0]]}', "NaN is not a number JSON allows"),
    ('{"frame": "ego", "waypoints": [[true, false, false], [2, 0, 0]]}', r"waypoints\[0\] = \[True, False"),
    ('{"frame": "ego", "waypoints": [[1, 0, 0], [1e400, 0, 0]]}', "Infinity|not a finite|1e\\+400|inf"),
    ('{"frame": "ego", "waypoints": [[1, 0, 0], [100000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000, 0, 0]]}', r"waypoints\[1\]"),
    (json.dumps([_record(1.5, 0), dict(_record(2.0, 0), position={"x": True, "y": 0, "z": 5})]),
     r"poses\[1\]\.position\.x = True"),
    (json.dumps([_record(1500.0, 0), _record(3000.0, 0)]), r"poses\[0\] is 1499 m from the current pose"),
    (json.dumps([_record(1.5, 0), dict(_record(2.0, 0), velocity={"linear": {"x": 1e3, "y": 0, "z": 0},
                                                                   "angular": {"x": 0, "y": 0, "z": 0}})]),
     r"poses\[1\]\.velocity\.linear is 1000 m/s"),
])
def test_plans_in_other_units_or_with_wild_values_are_refused(text: str, message: str, tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(text)
    with pytest.raises(PlanFileError, match=message) as exc:
        read_plan(plan, HISTORY, 2, rate_hz=2.0)
    assert str(plan) in str(exc.value) and "\n" not in str(exc.value)


# ------------------------------------------------------------------------------------------------ hostile files
GML_MEMBER = "udx/bldg/53394525_bldg_6697_op.gml"


def _zip(path: Path, data: bytes, method: int = zipfile.ZIP_DEFLATED, name: str = GML_MEMBER) -> Path:
    with zipfile.ZipFile(path, "w", compression=method) as zf:
        zf.writestr(name, data)
    return path


def _patch_member(path: Path, *, flag: int | None = None, method: int | None = None) -> None:
    """Set the general-purpose flag bits / compression method of the (only) member in both of its headers."""
    raw = bytearray(path.read_bytes())
    local, central = 0, raw.index(b"PK\x01\x02")
    for start, flag_at in ((local, 6), (central, 8)):
        if flag is not None:
            struct.pack_into("<H", raw, start + flag_at, struct.unpack_from("<H", raw, start + flag_at)[0] | flag)
        if method is not None:
            struct.pack_into("<H", raw, start + flag_at + 2, method)
    path.write_bytes(bytes(raw))


@pytest.fixture
def no_hang():
    """A read that blocks (a FIFO opened) fails the test after 20 s instead of hanging the suite."""
    def alarm(*_):
        raise TimeoutError("the input was opened and blocked")
    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


@pytest.mark.parametrize("case, message", [
    ("bomb", "zip bomb"), ("declared", "declares"), ("encrypted", "encrypted"), ("method", "compression method 9"),
    ("fifo", "FIFO"), ("fifo in folder", "FIFO"), ("fifo zip", "FIFO"), ("device", "a device"),
])
def test_hostile_archives_and_special_files_are_refused_before_reading(case: str, message: str, tmp_path: Path,
                                                                        monkeypatch, no_hang, capsys) -> None:
    from occworld_tokyo.citymodel import sources

    if case == "bomb":  # 40 MB of zeros in a 40 kB member: refused from the directory, never decompressed
        target = _zip(tmp_path / "bomb.zip", bytes(40 * 2 ** 20))
    elif case == "declared":
        monkeypatch.setattr(sources, "MAX_SOURCE_BYTES", 2 ** 20)
        target = _zip(tmp_path / "big.zip", os.urandom(2 ** 21), zipfile.ZIP_STORED)
    elif case in ("encrypted", "method"):
        target = _zip(tmp_path / f"{case}.zip", b"<x/>" * 100)
        _patch_member(target, **({"flag": 1} if case == "encrypted" else {"method": 9}))
    elif case == "device":
        target = tmp_path / "null.gml"
        target.symlink_to("/dev/zero")
    else:
        folder = tmp_path / "udx" / "bldg"
        folder.mkdir(parents=True)
        fifo = folder / ("53394525_bldg_6697_op.gml" if case != "fifo zip" else "city.zip")
        os.mkfifo(fifo)
        target = folder if case == "fifo in folder" else fifo
    with pytest.raises(CityModelError, match=message) as exc:
        discover([target])
    assert "Fix:" in str(exc.value) and "\n" not in str(exc.value)
    out = tmp_path / "out"
    assert generate_command.main(["--input", str(target), "--output", str(out), "--cache", str(tmp_path / "c"),
                                  "--frames", "2", "--sessions", "1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and not out.exists()


def test_zip_members_are_streamed_not_held_in_memory(tmp_path: Path) -> None:
    import tracemalloc

    from occworld_tokyo.citymodel.cache import source_key

    archive = _zip(tmp_path / "city.zip", os.urandom(24 * 2 ** 20), zipfile.ZIP_STORED)
    (src,) = discover([archive]).sources
    tracemalloc.start()
    try:
        key = source_key(src)
        with src.open() as f:
            while f.read(2 ** 20):
                pass
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(key) == 64 and peak < 12 * 2 ** 20  # the member is 24 MB; hashing and reading keep a few chunks


def test_memory_is_estimated_and_refused_before_work(tmp_path: Path, monkeypatch, capsys) -> None:
    from types import SimpleNamespace

    from occworld_tokyo import memory
    from occworld_tokyo.citymodel import sources
    from occworld_tokyo.grid import DEFAULT_GRID
    from occworld_tokyo.sessions.generate import check_region_memory, region_world_bytes

    ward = SimpleNamespace(places=[SimpleNamespace(id=0, bounds=(0.0, 0.0, 30_000.0, 25_000.0))])
    district = SimpleNamespace(places=[SimpleNamespace(id=0, bounds=(0.0, 0.0, 600.0, 600.0))])
    assert region_world_bytes(ward, {0: []}, 20_000.0, DEFAULT_GRID) > 600e9  # 20 km areas: 400 km^2 of voxels
    assert region_world_bytes(ward, {0: []}, 800.0, DEFAULT_GRID) < 2.3e9      # docs: 1.8-2.1 GB measured
    # a small input cuts the plan area to its data: a big --region-size costs nothing there
    assert region_world_bytes(district, {0: []}, 20_000.0, DEFAULT_GRID) == region_world_bytes(
        district, {0: []}, 800.0, DEFAULT_GRID)
    monkeypatch.setattr(memory, "available_bytes", lambda: 16e9)
    spec = GenerationSpec(region_size=20_000.0)
    with pytest.raises(memory.NotEnoughMemoryError, match=r"--region-size 20000 with --workers 1 .* smaller "
                                                          r"--region-size"):
        check_region_memory(ward, {0: []}, spec, 1, DEFAULT_GRID)
    check_region_memory(district, {0: []}, spec, 1, DEFAULT_GRID)
    with pytest.raises(memory.NotEnoughMemoryError, match="fewer --workers"):
        check_region_memory(ward, {0: []}, GenerationSpec(), 16, DEFAULT_GRID)
    # end to end: refused with one line, nothing written
    monkeypatch.setattr(memory, "available_bytes", lambda: 0.5e9)
    out = tmp_path / "out"
    assert generate_command.main(["--output", str(out), "--frames", "2", "--sessions", "1", "--quiet",
                                  "--no-sensors"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs about" in err and "--region-size" in err and not out.exists()
    # an OBJ file is read whole: refused from its size, before reading
    obj = tmp_path / "53394525_bldg_6677.obj"
    obj.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n" * 2000)
    monkeypatch.setattr(memory, "available_bytes", lambda: sources.OBJ_MEMORY_FACTOR * obj.stat().st_size / 2)
    with pytest.raises(CityModelError, match="OBJ file needs about"):
        discover([obj])


# ------------------------------------------------------------------------------------------------ re-runs
def test_every_setting_is_either_in_the_reuse_check_or_changes_no_byte() -> None:
    from dataclasses import fields

    from occworld_tokyo.sessions.reuse import NOT_OUTPUT_FIELDS, OUTPUT_FIELDS, requested_settings

    names = {f.name for f in fields(GenerationSpec)}
    assert names == set(OUTPUT_FIELDS) | set(NOT_OUTPUT_FIELDS), (
        f"classify {sorted(names ^ (set(OUTPUT_FIELDS) | set(NOT_OUTPUT_FIELDS)))} in sessions/reuse.py")
    requested = requested_settings(GenerationSpec(), 0, "drone", ["x"])
    assert {k for keys in OUTPUT_FIELDS.values() for k in keys} <= set(requested)


@pytest.fixture(scope="module")
def one_session(tmp_path_factory):
    from occworld_tokyo.citymodel.sample_city import load_sample_city
    from occworld_tokyo.sessions.generate import generate_sessions
    from occworld_tokyo.world import build_voxel_world

    mesh = load_sample_city()
    world = build_voxel_world(mesh, progress=False)
    root = tmp_path_factory.mktemp("rerun") / "data"
    generate_sessions(root, spec=GenerationSpec(frames=2, sessions=1, sensors=False), progress=False, mesh=mesh,
                      world=world)
    return root, mesh, world


@pytest.mark.parametrize("overrides, key", [
    ({"region_size": 700.0}, "generator.settings.region_size_m"),
    ({"region": "53394525"}, "generator.settings.region"),
    ({"jpeg_quality": 80}, "generator.settings.jpeg_quality"),
    ({"grid": "occ3d"}, "grid.voxel_size"),
    ({"rate_hz": 1.0, "frames": 1}, "rate_hz"),
])
def test_a_rerun_with_any_other_output_setting_stops_untouched(one_session, overrides: dict, key: str,
                                                               tmp_path: Path) -> None:
    import shutil

    from occworld_tokyo.sessions.generate import generate_sessions

    root, mesh, world = one_session
    data = tmp_path / "data"
    shutil.copytree(root, data)
    before = sorted((p.name, p.stat().st_mtime_ns) for p in data.rglob("*"))
    spec = GenerationSpec(**{"frames": 2, "sessions": 1, "sensors": False, **overrides})
    with pytest.raises(GenerationError, match=key.replace(".", r"\.")):
        generate_sessions(data, spec=spec, progress=False, mesh=mesh, world=world)
    assert sorted((p.name, p.stat().st_mtime_ns) for p in data.rglob("*")) == before
    same = generate_sessions(data, spec=GenerationSpec(frames=2, sessions=1, sensors=False), progress=False,
                             mesh=mesh, world=world)
    assert same.written == [] and len(same.skipped) == 1


def test_sessions_that_do_not_record_the_region_settings_are_not_reused(one_session, tmp_path: Path) -> None:
    import shutil

    from occworld_tokyo.sessions.generate import generate_sessions

    root, mesh, world = one_session
    data = tmp_path / "data"
    shutil.copytree(root, data)
    meta_path = next(data.glob("*/meta.json"))
    meta = json.loads(meta_path.read_text())
    del meta["generator"]["settings"]
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(GenerationError, match=r"region_size_m: existing \"\(not recorded\)\", requested 800"):
        generate_sessions(data, spec=GenerationSpec(frames=2, sessions=1, sensors=False), progress=False, mesh=mesh,
                          world=world)


# ------------------------------------------------------------------------------------------------ processes
def _children(pid: int) -> list[int]:
    """Live processes forked from `pid` running its command line (generation workers, not helpers)."""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        cmd = None
    out = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
            child = int(stat_file.parent.name)
            if int(fields[1]) == pid and fields[0] != "Z" and (cmd is None or
                                                               (stat_file.parent / "cmdline").read_bytes() == cmd):
                out.append(child)
        except (OSError, IndexError, ValueError):
            continue
    return out


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _wait_for(predicate, seconds: float = 120.0) -> bool:
    import time

    deadline = time.monotonic() + seconds  # a bound on waiting for the processes, not a timing assertion
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_killed_generation_takes_its_workers_and_its_claim_with_it(tmp_path: Path) -> None:
    import subprocess
    import sys

    from occworld_tokyo.locks import FolderBusyError, claim_folder

    out = tmp_path / "data"
    env = {**os.environ, "OCCWORLD_TOKYO_CACHE": str(tmp_path / "cache")}
    proc = subprocess.Popen([sys.executable, "-m", "occworld_tokyo.cli", "generate", "--output", str(out),
                             "--frames", "400", "--sessions", "4", "--workers", "2", "--no-sensors", "--quiet"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    workers: list[int] = []
    try:
        def writing() -> bool:
            workers[:] = _children(proc.pid)
            return proc.poll() is not None or (len(workers) == 2 and out.is_dir()
                                               and any(p.name.startswith(".tmp") for p in out.iterdir()))
        assert _wait_for(writing) and proc.poll() is None, proc.stderr.read().decode() if proc.poll() else "slow"
        with pytest.raises(FolderBusyError):  # the run holds its folder
            with claim_folder(out, "test"):
                pass
        proc.kill()  # SIGKILL: no cleanup code runs in the parent
        proc.wait(timeout=60)
        assert _wait_for(lambda: not any(_alive(w) for w in workers)), "workers outlived their run"
        with claim_folder(out, "test"):  # and with them the claim is gone: the folder is free for a new run
            pass
    finally:
        for pid in [proc.pid, *workers]:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        proc.stderr.close()


def test_children_that_write_hold_the_claim_while_they_live(tmp_path: Path) -> None:
    """A child of a `children_hold` claim keeps the folder busy after its parent is gone (here it ignores
    die_with_parent on purpose, as a worker on a system without PR_SET_PDEATHSIG would)."""
    import subprocess
    import sys

    from occworld_tokyo.locks import FolderBusyError, claim_folder

    script = ("import os, sys, time\nfrom occworld_tokyo.locks import claim_folder\n"
              f"with claim_folder({str(tmp_path / 'w')!r}, 'test', children_hold=True):\n"
              "    pid = os.fork()\n    if pid == 0:\n        null = os.open(os.devnull, os.O_WRONLY)\n"
              "        os.dup2(null, 1)\n        os.dup2(null, 2)\n        time.sleep(60)\n        os._exit(0)\n"
              "    print(pid, flush=True)\n    os._exit(0)\n")
    parent = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    child = int(parent.stdout.split()[0])
    try:
        assert _alive(child)
        with pytest.raises(FolderBusyError, match="in use by another run"):
            with claim_folder(tmp_path / "w", "test"):
                pass
    finally:
        os.kill(child, signal.SIGKILL)
    assert _wait_for(lambda: not _alive(child))
    with claim_folder(tmp_path / "w", "test"):
        pass
