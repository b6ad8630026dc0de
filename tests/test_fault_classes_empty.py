"""Issue 21, class "silent empty output": sessions show the content of the input or say plainly what they missed.

One test per behaviour a user relies on:
- the coverage report: a content kind of the input shown in no frame is a WARNING naming the file, the kind and a
  fix; `--strict` ends with exit 2 and one line, and the sessions already written stay as they were;
- meta.json `coverage` agrees with the frames, and `validate` checks it;
- sessions go where the content is: a railway tile beside a built-up tile gets sessions, and its frames show it;
- small data fits: a single-building tile gives sessions (before: exit 2 even with --frames 1) that show it;
- the same building in two files is one building;
- degenerate and self-intersecting polygons are reported in one line naming the file and the feature ids.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from lxml import etree

from occworld_tokyo import labels as L
from occworld_tokyo.agents import TrafficDensity
from occworld_tokyo.citymodel import CityModelWarning, load_city
from occworld_tokyo.citymodel.index import build_index
from occworld_tokyo.citymodel.sample_city import write_sample_district, write_sample_railway
from occworld_tokyo.sessions import command, validate
from occworld_tokyo.sessions.generate import GenerationSpec, generate_sessions
from occworld_tokyo.sessions.regions import MIN_PLAN_SIDE, tile_weights

PLATEAU = Path(__file__).resolve().parents[2] / "shared" / "data" / "plateau"
YOKOSUKA = PLATEAU / "52397519_bldg_6697_op.gml"
DEM = PLATEAU / "523965_dem_6697_05_op.gml"
SOUTH = PLATEAU / "53392547_bldg_6697_op2.gml"
needs_plateau = pytest.mark.skipif(not PLATEAU.is_dir(), reason="../shared/data/plateau not present")


def _frames_showing(session: Path, label: int) -> int:
    """Frames of a session whose occupancy holds an input object (instance > 0) of `label`."""
    n = 0
    for f in sorted((session / "occupancy").glob("*_occupancy.npz")):
        with np.load(f) as z:
            n += bool(((z["occupancy"] == label) & (z["instances"] > 0)).any())
    return n


def _cli(args: list[str], capsys) -> tuple[int, str, str]:
    rc = command.main(args + ["--no-sensors", "--static", "--quiet"])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@needs_plateau
def test_missed_content_is_a_warning_and_strict_fails_keeping_the_sessions(tmp_path, capsys):
    """Yokosuka's buildings and a dem 6 km away: the sessions go to the buildings, so the dem's terrain is in no
    frame. The run says so, naming the dem file and a --region that reaches it; --strict exits 2 with one line,
    also on the re-run that finds every session finished, and changes no byte of what was written."""
    out, cache = tmp_path / "out", tmp_path / "cache"
    args = ["--input", str(YOKOSUKA), str(DEM), "--output", str(out), "--frames", "4", "--sessions", "2",
            "--cache", str(cache)]
    rc, stdout, _ = _cli(args, capsys)
    assert rc == 0
    warning = [line for line in stdout.splitlines() if line.startswith("WARNING: terrain")]
    assert len(warning) == 1 and DEM.name in warning[0] and "0 of 8 frames" in warning[0]
    assert "--region 5239" in warning[0]
    assert any(line.startswith("coverage: building") for line in stdout.splitlines())
    before = _snapshot(out)
    rc, stdout, stderr = _cli(args + ["--strict"], capsys)
    assert rc == 2 and stdout == ""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --strict:") and DEM.name in lines[0]
    assert "--region 5239" in lines[0] and "kept" in lines[0]
    assert _snapshot(out) == before  # nothing deleted, nothing rewritten
    checks, folder_problems = validate.validate(out)
    assert not folder_problems and not any(c.problems for c in checks) and len(checks) == 2


@needs_plateau
def test_meta_coverage_matches_the_frames_and_validate_checks_it(tmp_path):
    out = tmp_path / "out"
    spec = GenerationSpec(frames=4, sessions=2, sensors=False, density=TrafficDensity.none())
    report = generate_sessions(out, [str(YOKOSUKA)], spec=spec, progress=False, cache_dir=tmp_path / "cache")
    assert report.coverage is not None and not report.coverage.warnings
    for session in sorted(p for p in out.iterdir() if p.is_dir()):
        meta = json.loads((session / "meta.json").read_text())
        assert meta["coverage"]["frames_with"]["building"] == _frames_showing(session, L.BUILDING)
        assert meta["coverage"]["frames_with"]["railway"] == 0
    checks, problems = validate.validate(out)
    assert not problems and not any(c.problems for c in checks)
    assert "frames showing input objects: building" in validate.format_summary(checks, problems)
    # a coverage that the frames do not hold is named, field and file, with the fix
    session = sorted(p for p in out.iterdir() if p.is_dir())[0]
    meta = json.loads((session / "meta.json").read_text())
    meta["coverage"]["frames_with"]["railway"] = 3
    (session / "meta.json").write_text(json.dumps(meta))
    checks, _ = validate.validate(out)
    bad = [p for c in checks for p in c.problems]
    assert len(bad) == 1 and "coverage.frames_with" in bad[0] and "railway: meta.json 3, frames 0" in bad[0]
    meta["coverage"]["frames_with"]["railway"] = 99  # more frames than the session has
    (session / "meta.json").write_text(json.dumps(meta))
    checks, _ = validate.validate(out)
    assert any("'coverage.frames_with.railway' = 99 must be a whole number 0..4" in p for c in checks for p in c.problems)


def test_sessions_go_to_a_railway_tile_and_show_the_railway(tmp_path):
    """A railway tile beside a built-up tile: weighted by buildings alone, 6 of 6 sessions went to the buildings
    and no frame showed the railway (measured, seed 0). Each content kind gets an equal share of the draws."""
    city = tmp_path / "city"
    write_sample_district(city, seed=0, size_m=300.0)
    write_sample_railway(city, east_m=1500.0)
    inputs = [str(city / "udx" / "bldg"), str(city / "udx" / "rwy")]
    index = build_index(inputs, cache_dir=tmp_path / "cache", progress=False)
    cands, p = tile_weights(index, {pl.id: pl.codes for pl in index.places})
    rail = [k for k, (_, code) in enumerate(cands) if any(t.code == code and dict(t.kinds).get(L.RAILWAY)
                                                            for t in index.tiles)]
    assert len(rail) == 1 and 0.45 <= p[rail[0]] <= 0.55  # buildings and railways: half each (less the uniform 5 %)
    spec = GenerationSpec(frames=6, sessions=4, agent="rover", sensors=False, region_size=MIN_PLAN_SIDE,
                          density=TrafficDensity.none())
    report = generate_sessions(tmp_path / "out", inputs, spec=spec, progress=False, cache_dir=tmp_path / "cache")
    sessions = sorted(p for p in (tmp_path / "out").iterdir() if p.is_dir())
    assert sum(_frames_showing(s, L.RAILWAY) for s in sessions) > 0
    assert sum(_frames_showing(s, L.BUILDING) for s in sessions) > 0
    assert not report.coverage.warnings


@needs_plateau
def test_a_single_building_tile_fits_and_every_session_shows_it(tmp_path, capsys):
    """One building of Yokosuka's tile (about 10 m of data): before, every session exited 2 ("no area of the input
    can hold it ... try fewer --frames"), --frames 1 too. Now the plan area is MIN_PLAN_SIDE around the data."""
    tree = etree.parse(str(YOKOSUKA))
    root = tree.getroot()
    members = [c for c in root if isinstance(c.tag, str) and c.tag.endswith("cityObjectMember")]
    for m in members[1:]:
        root.remove(m)
    src = tmp_path / "in" / YOKOSUKA.name
    src.parent.mkdir()
    tree.write(str(src), xml_declaration=True, encoding="UTF-8")
    out = tmp_path / "out"
    rc, stdout, stderr = _cli(["--input", str(src), "--output", str(out), "--frames", "8", "--sessions", "2",
                               "--cache", str(tmp_path / "cache")], capsys)
    assert rc == 0, stderr
    assert f"at least {MIN_PLAN_SIDE:.0f} m around it" in stdout and "WARNING" not in stdout
    sessions = sorted(p for p in out.iterdir() if p.is_dir())
    assert [s.name.split("_")[0] for s in sessions] == ["drone", "rover"]
    for s in sessions:
        x0, y0, x1, y1 = json.loads((s / "meta.json").read_text())["city"]["region"]["plan_area_m"]
        assert x1 - x0 == pytest.approx(MIN_PLAN_SIDE, abs=0.1) and y1 - y0 == pytest.approx(MIN_PLAN_SIDE, abs=0.1)
        assert _frames_showing(s, L.BUILDING) >= 6  # of 8
    rc, _, stderr = _cli(["--input", str(src), "--output", str(tmp_path / "one"), "--frames", "1",
                          "--sessions", "1", "--cache", str(tmp_path / "cache")], capsys)
    assert rc == 0, stderr


@needs_plateau
def test_the_same_building_in_two_files_is_one_building(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(SOUTH, folder / "53392547_bldg_6697_op.gml")  # the same 25 buildings twice, as two "releases"
    shutil.copy(SOUTH, folder / "53392547_bldg_6697_op2.gml")
    with pytest.warns(CityModelWarning, match=r"25 city object\(s\) appear again .*dropped 25 from .*op2\.gml"):
        mesh = load_city(folder, progress=False)
    assert mesh.n_objects == 25 and len(set(mesh.object_gml_id)) == 25 and mesh.skipped["duplicate_objects"] == 25
    assert len(np.unique(mesh.object_instance)) == 25
    index = build_index(folder, cache_dir=tmp_path / "cache", progress=False)
    region = index.load_region(index.places[0])
    assert region.n_objects == 25 and sorted(region.object_gml_id) == sorted(mesh.object_gml_id)
    assert sum(t.buildings for t in index.tiles) == 25 and index.skipped["duplicate_objects"] == 25
    assert "dropped 25 from" in index.summary() and "53392547_bldg_6697_op2.gml" in index.summary()


def _bad_polygons_file(path: Path) -> None:
    """One LOD1 building (a 10 m box) whose solid also holds a bow-tie face and a face with two distinct
    vertices, and a second, clean building."""
    lat0, lon0, z0, z1 = 35.69, 139.70, 40.0, 50.0
    d = 1e-4  # ~11 m north, ~9 m east

    def ring(pts):
        pts = list(pts) + [pts[0]]
        return ("<gml:surfaceMember><gml:Polygon><gml:exterior><gml:LinearRing><gml:posList>"
                + " ".join(f"{a:.7f} {b:.7f} {h:.2f}" for a, b, h in pts)
                + "</gml:posList></gml:LinearRing></gml:exterior></gml:Polygon></gml:surfaceMember>")

    def box(la, lo):
        c = [(la, lo), (la, lo + d), (la + d, lo + d), (la + d, lo)]
        faces = [[(a, b, z0) for a, b in c], [(a, b, z1) for a, b in reversed(c)]]
        for (a, b), (e, f) in zip(c, c[1:] + c[:1]):
            faces.append([(a, b, z0), (e, f, z0), (e, f, z1), (a, b, z1)])
        return faces

    bad = box(lat0, lon0) + [
        [(lat0, lon0, z1), (lat0 + d, lon0 + d, z1), (lat0, lon0 + d, z1), (lat0 + 0.6 * d, lon0, z1)],  # bow-tie
        [(lat0, lon0, z0), (lat0 + d, lon0, z0), (lat0, lon0, z0), (lat0 + d, lon0, z0)],  # two distinct vertices
    ]

    def building(gid, faces):
        return (f'<core:cityObjectMember><bldg:Building gml:id="{gid}"><bldg:lod1Solid><gml:Solid><gml:exterior>'
                "<gml:CompositeSurface>" + "".join(ring(f) for f in faces) + "</gml:CompositeSurface></gml:exterior>"
                "</gml:Solid></bldg:lod1Solid></bldg:Building></core:cityObjectMember>")

    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<core:CityModel xmlns:core="http://www.opengis.net/citygml/2.0" '
        'xmlns:gml="http://www.opengis.net/gml" xmlns:bldg="http://www.opengis.net/citygml/building/2.0">'
        '<gml:boundedBy><gml:Envelope srsName="http://www.opengis.net/def/crs/EPSG/0/6697" srsDimension="3">'
        f"<gml:lowerCorner>{lat0} {lon0} {z0}</gml:lowerCorner><gml:upperCorner>{lat0 + 4 * d} {lon0 + d} {z1}"
        "</gml:upperCorner></gml:Envelope></gml:boundedBy>"
        + building("bldg_crossed", bad) + building("bldg_clean", box(lat0 + 3 * d, lon0)) + "</core:CityModel>\n",
        encoding="utf-8")


def test_degenerate_and_self_intersecting_polygons_are_reported_in_one_line(tmp_path):
    src = tmp_path / "53394526_bldg_6697_op.gml"
    _bad_polygons_file(src)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mesh = load_city(src, progress=False)
    lines = [str(w.message) for w in caught if issubclass(w.category, CityModelWarning)]
    assert len(lines) == 1  # one summary for the file, not one line per polygon
    line = lines[0]
    assert line.startswith(f"WARNING: {src}") and "bldg_crossed" in line and "bldg_clean" not in line
    assert "1 degenerate polygon(s)" in line and "1 self-intersecting polygon(s)" in line
    assert mesh.skipped["degenerate_polygons"] == 1 and mesh.skipped["self_intersecting_polygons"] == 1
    assert mesh.n_objects == 2
    # through the city index (what generation reads) the same line is a note of its summary, from the cache too
    for _ in range(2):
        index = build_index(src, cache_dir=tmp_path / "cache", progress=False)
        assert line in index.summary().splitlines()
