"""City scale (issue 10): tile cache, region worlds equal to the dense world, the three real places in one run,
shards' union equal to one run, sessions that see buildings, the sample city's files, refusal on a full disk."""

from __future__ import annotations

import filecmp
import json
import os
import shutil
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest

from occworld_tokyo.citymodel.index import build_index
from occworld_tokyo.citymodel.meshcode import mesh_bounds, mesh_code
from occworld_tokyo.citymodel.sample_city import city_tiles, write_sample_city
from occworld_tokyo.sessions.generate import GenerationError, GenerationSpec, generate_sessions
from occworld_tokyo.world import build_voxel_world
from occworld_tokyo.world.region import build_region_world

PLATEAU = Path(__file__).resolve().parents[2] / "shared" / "data" / "plateau"
needs_plateau = pytest.mark.skipif(not PLATEAU.is_dir(), reason="../shared/data/plateau not present")
COARSE = (2.0, 2.0, 1.25)  # m: coarse columns keep the dense 2 x 2 km world small; levels as in the real world


@pytest.fixture(scope="module")
def city2(tmp_path_factory):
    """A 2 x 2 mesh-square sample city, indexed into a fresh cache."""
    root = tmp_path_factory.mktemp("city2")
    write_sample_city(root / "city", size_km=2, progress=False)
    index = build_index(root / "city" / "udx", cache_dir=root / "cache", workers=2, progress=False)
    return namedtuple("City", "root index")(root, index)


def test_sample_city_files_are_plateau_named_mesh_tiles(city2):
    names = sorted(p.name for p in (city2.root / "city" / "udx" / "bldg").iterdir())
    assert names == [f"{c}_bldg_6697_op.gml" for c in city_tiles(2)]
    assert len(city_tiles(2)) == 4
    # every building file holds buildings of its own square only (by footprint centre)
    place = city2.index.places[0]
    assert len(city2.index.places) == 1
    assert {t.code for t in place.tiles if t.buildings} == set(city_tiles(2))
    for c in city_tiles(2):
        la0, lo0, la1, lo1 = mesh_bounds(c)
        assert mesh_code((la0 + la1) / 2, (lo0 + lo1) / 2) == c


def test_cache_reused_and_invalidated_by_a_changed_file(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for f in ("53392547_bldg_6697_op2.gml", "52397519_bldg_6697_op.gml"):
        if not (PLATEAU / f).exists():
            pytest.skip("../shared/data/plateau not present")
        shutil.copy(PLATEAU / f, src / f)
    cache = tmp_path / "cache"
    first = build_index(src, cache_dir=cache, progress=False)
    assert first.parsed_now == 2
    again = build_index(src, cache_dir=cache, progress=False)
    assert again.parsed_now == 0
    n_before = sum(t.buildings for t in again.tiles)
    # drop the last building of one file: a changed file is parsed again, the other one is not
    path = src / "53392547_bldg_6697_op2.gml"
    text = path.read_text(encoding="utf-8")
    start = text.rfind("<core:cityObjectMember>")
    end = text.find("</core:cityObjectMember>", start) + len("</core:cityObjectMember>")
    path.write_text(text[:start] + text[end:], encoding="utf-8")
    changed = build_index(src, cache_dir=cache, progress=False)
    assert changed.parsed_now == 1
    assert sum(t.buildings for t in changed.tiles) == n_before - 1


def test_region_crops_equal_dense_crops_across_tile_edges(city2):
    place = city2.index.places[0]
    dense = build_voxel_world(city2.index.load_region(place), voxel_size=COARSE, progress=False)
    # the sample city's four squares meet near the frame's origin: both areas straddle tile edges
    rng = np.random.default_rng(0)
    checked = 0
    for area in [(-300.0, -250.0, 100.0, 150.0), (150.0, 60.0, 620.0, 420.0)]:
        rw = build_region_world(city2.index, place, area, voxel_size=COARSE)
        assert rw.world.objects.size < dense.objects.size / 4
        xs = np.concatenate([rng.uniform(area[0], area[2], 20), [area[0], area[2]]])
        ys = np.concatenate([rng.uniform(area[1], area[3], 20), [area[3], area[1]]])
        for x, y in zip(xs, ys):
            yaw = float(rng.uniform(-np.pi, np.pi))
            frame = dense.ego_frame(x, y, yaw)
            assert rw.world.ego_frame(x, y, yaw) == frame
            lab_d, inst_d = dense.crop(frame)
            lab_r, inst_r = rw.world.crop(frame)
            assert np.array_equal(lab_d, lab_r) and np.array_equal(inst_d, inst_r)
            checked += int((lab_d > 0).any())
    assert checked > 30  # the crops hold something


@needs_plateau
def test_three_real_places_in_one_run(tmp_path):
    index = build_index(PLATEAU, cache_dir=tmp_path / "cache", progress=False)
    assert len(index.places) == 3  # western Tokyo, southern Tokyo, Yokosuka (bldg + dem 7 km apart)
    origins = {(p.origin.lat, p.origin.lon) for p in index.places}
    assert len(origins) == 3
    # one run over all four files; --region per place pins one session to each of the two small places
    out = tmp_path / "out"
    spec = dict(frames=3, sessions=4, agent="rover", sensors=False, density=_static())
    report = generate_sessions(out, [str(PLATEAU)], spec=GenerationSpec(**spec), progress=False,
                               cache_dir=tmp_path / "cache")
    assert len(report.written) == 4
    for code in ("53392547", "52397519"):
        sub = tmp_path / f"out_{code}"
        generate_sessions(sub, [str(PLATEAU)], spec=GenerationSpec(**{**spec, "sessions": 1}, region=code),
                          progress=False, cache_dir=tmp_path / "cache")
        meta = json.loads(next(sub.glob("*/meta.json")).read_text())
        place = index.place_of(code)
        assert meta["city"]["region"]["place"] == place.id
        assert meta["city"]["origin"]["lat"] == place.origin.lat
        assert meta["city"]["objects"].get("building", 0) > 0
        occ = np.load(next((sub).glob("*/occupancy/000000_occupancy.npz")))
        assert occ[occ.files[0]].any()


def test_a_small_tile_gets_a_plan_area_its_session_fits_in(tmp_path):
    """The main job on the real files (`demo --input`) drew a 60-frame drone flight onto 53392547, whose data covers
    289 x 171 m: no flight fitted, and generation stopped. A plan area is now never under MIN_PLAN_SIDE (the world
    continues as open ground around small data), so the session stays on that tile, fits, and its frames show the
    tile's buildings (meta.json coverage). Redrawing elsewhere, when no area fits, is the monkeypatched test below."""
    from occworld_tokyo.sessions.regions import MIN_PLAN_SIDE

    spec = GenerationSpec(frames=60, sessions=3, sensors=False, density=_static(), shard=(2, 3))  # session 2 only
    report = generate_sessions(tmp_path / "o", [str(PLATEAU)], spec=spec, progress=False,
                               cache_dir=tmp_path / "cache")
    assert len(report.written) == 1 and not report.redrawn
    meta = json.loads((tmp_path / "o" / report.written[0] / "meta.json").read_text())
    region = meta["city"]["region"]
    x0, y0, x1, y1 = region["plan_area_m"]
    assert region["tile_drawn"] == "53392547" and min(x1 - x0, y1 - y0) >= MIN_PLAN_SIDE - 0.01
    assert meta["n_frames"] == 60 and meta["coverage"]["frames_with"]["building"] >= 50


def test_a_session_no_area_can_hold_names_every_area_it_tried(city2, tmp_path, monkeypatch):
    import occworld_tokyo.sessions.generate as gen
    from occworld_tokyo.trajectories.curves import PlanningError

    def never(*args):
        raise PlanningError("no free direction")

    monkeypatch.setattr(gen, "plan_trajectory", never)
    with pytest.raises(GenerationError) as info:
        generate_sessions(tmp_path / "o", [str(city2.root / "city" / "udx")], progress=False,
                          spec=GenerationSpec(frames=2, sessions=1, sensors=False, density=_static()),
                          cache_dir=city2.root / "cache")
    message = str(info.value)
    tiles = len(city2.index.places[0].codes) if len(city2.index.places) == 1 else None
    tried = message.count("no free direction")
    assert tried == min(gen.MAX_AREA_DRAWS, tiles or gen.MAX_AREA_DRAWS)
    assert "--frames" in message and not any((tmp_path / "o").glob("*/meta.json"))


def _static():
    from occworld_tokyo.agents import TrafficDensity

    return TrafficDensity.none()


def test_shards_union_equals_one_run_byte_for_byte(city2, tmp_path):
    spec = dict(frames=3, sessions=4, sensors=False, region_size=300.0, density=_static())
    kw = dict(progress=False, cache_dir=city2.root / "cache")
    inputs = [str(city2.root / "city" / "udx")]
    generate_sessions(tmp_path / "one", inputs, spec=GenerationSpec(**spec), **kw)
    for i in range(3):
        generate_sessions(tmp_path / "shards", inputs, spec=GenerationSpec(**spec, shard=(i, 3)), **kw)
    one = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*") if p.is_file())
    union = sorted(p.relative_to(tmp_path / "shards") for p in (tmp_path / "shards").rglob("*") if p.is_file())
    assert one == union and len(one) > 4 * 3
    for rel in one:
        assert filecmp.cmp(tmp_path / "one" / rel, tmp_path / "shards" / rel, shallow=False), rel
    areas = {tuple(json.loads(p.read_text())["city"]["region"]["plan_area_m"])
             for p in (tmp_path / "one").glob("*/meta.json")}
    assert len(areas) > 1  # the sessions went to different parts of the city


def test_frames_see_buildings_on_the_sample_city(city2, tmp_path):
    from occworld_tokyo import labels as L

    spec = GenerationSpec(frames=4, sessions=6, sensors=False, region_size=400.0, density=_static())
    generate_sessions(tmp_path / "o", [str(city2.root / "city" / "udx")], spec=spec, progress=False,
                      cache_dir=city2.root / "cache")
    seen = []
    for f in sorted((tmp_path / "o").glob("*/occupancy/*_occupancy.npz")):
        with np.load(f) as z:
            seen.append(bool((z[z.files[0]] == L.BUILDING).any()))
    assert len(seen) == 24 and np.mean(seen) >= 0.8


@needs_plateau
def test_most_frames_see_buildings_on_the_sparsest_real_tile(tmp_path):
    """Yokosuka's building file: 13 buildings on a ~1 km tile. Trajectories start near structures and head for
    them (drone waypoints, survey lanes through the centre, low orbits; rover legs), so most frames show one
    (6 % before, when starts and waypoints were uniform over the open tile)."""
    from occworld_tokyo import labels as L

    spec = GenerationSpec(frames=20, sessions=6, sensors=False, region="52397519", density=_static())
    generate_sessions(tmp_path / "o", [str(PLATEAU)], spec=spec, workers=2, progress=False,
                      cache_dir=tmp_path / "cache")
    seen = []
    for f in sorted((tmp_path / "o").glob("*/occupancy/*_occupancy.npz")):
        with np.load(f) as z:
            seen.append(bool((z[z.files[0]] == L.BUILDING).any()))
    assert len(seen) == 120 and np.mean(seen) >= 0.5


def test_region_filter_and_bad_region(city2, tmp_path):
    code = city_tiles(2)[0]
    spec = GenerationSpec(frames=2, sessions=2, sensors=False, region=code, region_size=300.0, density=_static())
    generate_sessions(tmp_path / "o", [str(city2.root / "city" / "udx")], spec=spec, progress=False,
                      cache_dir=city2.root / "cache")
    for m in (tmp_path / "o").glob("*/meta.json"):
        assert json.loads(m.read_text())["city"]["region"]["tile_drawn"] == code
    with pytest.raises(GenerationError, match="contains none of the input's mesh tiles"):
        generate_sessions(tmp_path / "bad", [str(city2.root / "city" / "udx")],
                          spec=GenerationSpec(frames=2, sessions=1, sensors=False, region="52350000"),
                          progress=False, cache_dir=city2.root / "cache")
    assert not (tmp_path / "bad").exists()


def test_full_disk_refused_before_writing(city2, tmp_path, monkeypatch):
    Usage = namedtuple("Usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: Usage(10**9, 10**9 - 10**6, 10**6))
    with pytest.raises(OSError, match="only 0.00 GB is free; nothing was written"):
        generate_sessions(tmp_path / "o", [str(city2.root / "city" / "udx")],
                          spec=GenerationSpec(frames=50, sessions=2, sensors=True), progress=False,
                          cache_dir=city2.root / "cache")
    assert not (tmp_path / "o").exists()
    assert not os.path.exists(tmp_path / "o")


def test_sample_city_command_writes_once_and_refuses_to_overwrite(tmp_path, capsys):
    from occworld_tokyo.cli import main

    assert main(["sample-city", "--size-km", "1", "--out", str(tmp_path / "c"), "--quiet"]) == 0
    files = sorted(p.relative_to(tmp_path / "c").as_posix() for p in (tmp_path / "c").rglob("*.gml"))
    code = city_tiles(1)[0]
    assert f"udx/bldg/{code}_bldg_6697_op.gml" in files and f"udx/dem/{code[:6]}_dem_6697_op.gml" in files
    before = {p: p.read_bytes() for p in (tmp_path / "c").rglob("*.gml")}
    assert main(["sample-city", "--size-km", "1", "--out", str(tmp_path / "c"), "--quiet"]) == 2
    assert "already exists; nothing was written" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in (tmp_path / "c").rglob("*.gml")} == before
    # same seed and size: byte-identical files
    assert main(["sample-city", "--size-km", "1", "--out", str(tmp_path / "d"), "--quiet"]) == 0
    for p, data in before.items():
        assert (tmp_path / "d" / p.relative_to(tmp_path / "c")).read_bytes() == data


@needs_plateau
def test_index_geometry_matches_load_city(tmp_path):
    """Through the cache (file frame, float32, re-projected into the place frame) every object lands where
    load_city puts it, to 1 cm, with the same origin."""
    from occworld_tokyo.citymodel import load_city

    src = PLATEAU / "53395404_bldg_6697_op.gml"
    ref = load_city(src, progress=False)
    index = build_index(src, cache_dir=tmp_path / "cache", progress=False)
    assert len(index.places) == 1
    got = index.load_region(index.places[0])
    assert (got.origin.lat, got.origin.lon) == (ref.origin.lat, ref.origin.lon)
    assert sorted(got.object_gml_id) == sorted(ref.object_gml_id) and got.n_triangles == ref.n_triangles

    def boxes(m):
        lo = np.full((m.n_objects, 3), np.inf)
        hi = np.full((m.n_objects, 3), -np.inf)
        np.minimum.at(lo, m.tri_object, m.triangles.min(axis=1))
        np.maximum.at(hi, m.tri_object, m.triangles.max(axis=1))
        return {g: np.concatenate([lo[i], hi[i]]) for i, g in enumerate(m.object_gml_id)}

    a, b = boxes(ref), boxes(got)
    err = max(np.abs(a[g] - b[g]).max() for g in a)
    assert err < 0.01
    assert len(set(got.object_instance.tolist())) == got.n_objects


@needs_plateau
def test_index_command_lists_the_places(tmp_path, capsys):
    from occworld_tokyo.cli import main

    assert main(["index", "--input", str(PLATEAU), "--cache", str(tmp_path / "cache"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "4 source file(s) (4 parsed now" in out and "in 3 place(s)" in out
    assert "657 buildings" in out
    assert main(["index", "--input", str(tmp_path / "missing"), "--cache", str(tmp_path / "cache"), "--quiet"]) == 2
    assert "missing" in capsys.readouterr().err


def test_region_worlds_keep_one_world_per_process(city2):
    import gc
    import weakref

    from occworld_tokyo.world.region import RegionWorlds

    worlds = RegionWorlds(city2.index)
    a = worlds.get(0, (-150.0, -150.0, 50.0, 50.0))
    assert worlds.get(0, (-150.0, -150.0, 50.0, 50.0)) is a and worlds.built == 1
    assert a.world.plan_bounds == (-150.0, -150.0, 50.0, 50.0)
    x0, y0, x1, y1 = a.world.bounds_xy
    assert x0 <= -150.0 - 56.6 and x1 >= 50.0 + 56.6  # the crop margin around the plan area
    gone = weakref.ref(a.world)
    del a
    b = worlds.get(0, (100.0, 100.0, 300.0, 300.0))
    gc.collect()
    assert worlds.built == 2 and gone() is None and b.world.plan_bounds[0] == 100.0
