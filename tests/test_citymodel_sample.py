"""The embedded sample district: PLATEAU-style files written deterministically and read back by load_city."""

from __future__ import annotations

import numpy as np
import pytest
from lxml import etree

from occworld_tokyo.citymodel import Fill, load_city
from occworld_tokyo.citymodel.sample_city import (MAX_HEIGHT, ground_height, load_sample_city, mesh_code,
                                                  write_sample_district)
from occworld_tokyo.labels import BRIDGE, BUILDING, ROAD, TERRAIN, VEGETATION, WATER


@pytest.fixture(scope="module")
def district(tmp_path_factory):
    out = tmp_path_factory.mktemp("district")
    files = write_sample_district(out, seed=0)
    return out, files, load_city(out / "udx", progress=False)


def test_layout_and_names(district):
    out, files, _ = district
    rel = sorted(str(f.relative_to(out)) for f in files)
    assert rel == ["udx/bldg/53394526_bldg_6697_op.gml", "udx/brid/53394526_brid_6697_op.gml",
                   "udx/dem/533945_dem_6697_op.gml", "udx/tran/53394526_tran_6697_op.gml",
                   "udx/veg/53394526_veg_6697_op.gml", "udx/wtr/53394526_wtr_6697_op.gml"]
    root = etree.parse(str(files[0])).getroot()
    env = root.find("{*}boundedBy/{*}Envelope")
    assert env.get("srsName").endswith("EPSG/0/6697")
    lat, lon, h = map(float, env.findtext("{*}lowerCorner").split())
    assert 35.68 < lat < 35.70 and 139.69 < lon < 139.71 and 30 < h < 40
    assert mesh_code(35.7568, 139.5532) == "53395404"  # the real western-Tokyo tile's mesh code


def test_round_trip_counts_and_heights(district):
    _, _, mesh = district
    counts = mesh.object_counts()
    assert counts[BUILDING] >= 150
    assert counts[ROAD] == 14  # 7 north-south + 7 east-west streets for 600 m
    assert counts[BRIDGE] == 1 and counts[TERRAIN] == 1 and counts[WATER] == 1
    assert counts[VEGETATION] >= 100
    assert mesh.origin.lat == pytest.approx(35.690, abs=1e-3) and mesh.origin.lon == pytest.approx(139.700, abs=1e-3)
    lo, hi = mesh.bounds()
    assert 34.5 < lo[2] < 37 and hi[0] - lo[0] == pytest.approx(700, abs=1)  # dem reaches 50 m past the district
    bz = mesh.triangles[np.isin(mesh.tri_object, np.flatnonzero(mesh.object_label == BUILDING))]
    top = bz[:, :, 2].max()
    centre = bz.reshape(-1, 3)[bz.reshape(-1, 3)[:, 2].argmax()]
    above_ground = top - ground_height(centre[0], centre[1])
    assert above_ground == pytest.approx(MAX_HEIGHT, abs=2.0)
    fills = dict(zip(mesh.object_label.tolist(), mesh.object_fill.tolist()))
    assert fills[BUILDING] == Fill.SOLID and fills[ROAD] == Fill.SURFACE and fills[TERRAIN] == Fill.TERRAIN
    assert fills[BRIDGE] == Fill.SOLID and fills[VEGETATION] == Fill.SOLID and fills[WATER] == Fill.SURFACE
    assert mesh.skipped == {}


def test_reader_paths_exercised(district):
    _, files, mesh = district
    ids = {g: i for i, g in enumerate(mesh.object_gml_id)}
    root = etree.parse(str(files[0])).getroot()
    lod2 = [b for b in root.iter("{*}Building") if b.find("{*}lod2Solid") is not None]
    parts = [b for b in root.iter("{*}Building") if b.find("{*}consistsOfBuildingPart") is not None]
    holes = [b for b in root.iter("{*}Building") if next(b.iter("{*}interior"), None) is not None]
    assert len(lod2) >= 10 and len(parts) >= 2 and len(holes) >= 3
    gid = "{http://www.opengis.net/gml}id"
    for b in lod2[:5]:  # gable roof from the LOD2 xlinks: the ridge is above the LOD1 box
        tris = mesh.triangles[mesh.tri_object == ids[b.get(gid)]]
        lod1_top = max(float(v) for v in b.find("{*}lod1Solid").findtext(".//{*}posList").split()[2::3])
        assert tris[:, :, 2].max() > lod1_top + 0.5 and len(tris) == 2 + 4 + 2 * 3 + 4
    for b in parts:  # the parent has no geometry; both parts end up in its object
        tris = mesh.triangles[mesh.tri_object == ids[b.get(gid)]]
        assert len(tris) == 24
    for b in holes:  # courtyard: footprint area = outer - inner
        tris = mesh.triangles[mesh.tri_object == ids[b.get(gid)]].astype(np.float64)
        zmin = tris[:, :, 2].min()
        bottom = tris[(np.abs(tris[:, :, 2] - zmin) < 1e-3).all(axis=1)]
        area = 0.5 * np.linalg.norm(np.cross(bottom[:, 1] - bottom[:, 0], bottom[:, 2] - bottom[:, 0]), axis=1).sum()
        xy = tris.reshape(-1, 3)[:, :2]
        w = xy.max(axis=0) - xy.min(axis=0)
        d = w.min() / 3
        assert area == pytest.approx(w[0] * w[1] - (w[0] - 2 * d) * (w[1] - 2 * d), rel=0.01)


def test_space_under_bridge_free(district):
    _, _, mesh = district
    deck = mesh.triangles[mesh.tri_object == int(np.flatnonzero(mesh.object_label == BRIDGE)[0])]
    x0, y0 = deck[:, :, 0].min(), deck[:, :, 1].min()
    x1, y1 = deck[:, :, 0].max(), deck[:, :, 1].max()
    under = deck[:, :, 2].min()
    assert under - ground_height((x0 + x1) / 2, (y0 + y1) / 2) == pytest.approx(6.0, abs=0.3)
    t = mesh.triangles
    lo, hi = t.min(axis=1), t.max(axis=1)
    inside = (lo[:, 0] < x1) & (hi[:, 0] > x0) & (lo[:, 1] < y1) & (hi[:, 1] > y0)  # xy boxes overlap the deck
    lab = mesh.object_label[mesh.tri_object]
    blocking = inside & (lab != ROAD) & (lab != TERRAIN) & (lab != BRIDGE) & (lo[:, 2] < under)
    assert not blocking.any()
    assert (inside & (lab == ROAD)).any()  # the avenue passes under it


def test_deterministic_bytes(tmp_path):
    a = write_sample_district(tmp_path / "a", seed=3)
    b = write_sample_district(tmp_path / "b", seed=3)
    c = write_sample_district(tmp_path / "c", seed=4)
    assert [x.read_bytes() for x in a] == [x.read_bytes() for x in b]
    assert a[0].read_bytes() != c[0].read_bytes()


def test_load_sample_city_cache_and_1km(tmp_path):
    m1 = load_sample_city(seed=1, size_m=1000.0, cache_dir=tmp_path)
    m2 = load_sample_city(seed=1, size_m=1000.0, cache_dir=tmp_path)
    np.testing.assert_array_equal(m1.triangles, m2.triangles)
    lo, hi = m1.bounds()
    assert hi[0] - lo[0] == pytest.approx(1100, abs=1)
    assert m1.object_counts()[BUILDING] > 300
    assert 33.5 < lo[2] and hi[2] < 41.5 + MAX_HEIGHT
