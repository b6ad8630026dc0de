"""load_city on the real PLATEAU files in ../shared/data/plateau (skipped when that folder is absent)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from lxml import etree

from occworld_tokyo.citymodel import Fill, load_city
from occworld_tokyo.citymodel.crs import local_to_lonlat
from occworld_tokyo.labels import BUILDING, TERRAIN

PLATEAU = Path(__file__).resolve().parents[2] / "shared" / "data" / "plateau"
WEST = PLATEAU / "53395404_bldg_6697_op.gml"
YOKOSUKA = PLATEAU / "52397519_bldg_6697_op.gml"
SOUTH = PLATEAU / "53392547_bldg_6697_op2.gml"
DEM = PLATEAU / "523965_dem_6697_05_op.gml"

pytestmark = pytest.mark.skipif(not WEST.exists(), reason=f"real PLATEAU data not found at {PLATEAU}")


def per_object_z(mesh) -> tuple[np.ndarray, np.ndarray]:
    z = mesh.triangles[:, :, 2]
    lo = np.full(mesh.n_objects, np.inf)
    hi = np.full(mesh.n_objects, -np.inf)
    np.minimum.at(lo, mesh.tri_object, z.min(axis=1))
    np.maximum.at(hi, mesh.tri_object, z.max(axis=1))
    return lo, hi


def measured_heights(path: Path) -> dict[str, float]:
    out = {}
    for b in etree.parse(str(path)).getroot().iter("{*}Building"):
        out[b.get("{http://www.opengis.net/gml}id")] = float(b.findtext("{*}measuredHeight"))
    return out


def edge_use_counts(tris: np.ndarray) -> np.ndarray:
    """How many triangles use each undirected edge (vertices welded at 1 mm)."""
    key = np.round(tris.astype(np.float64) * 1000).astype(np.int64)
    e = np.concatenate([key[:, [0, 1]], key[:, [1, 2]], key[:, [2, 0]]])  # (E, 2, 3)
    _, vid = np.unique(e.reshape(-1, 3), axis=0, return_inverse=True)
    pairs = np.sort(vid.reshape(-1, 2), axis=1)
    _, counts = np.unique(pairs, axis=0, return_counts=True)
    return counts


def test_western_tokyo_657_buildings_in_place():
    mesh = load_city(WEST, progress=False)
    assert mesh.n_objects == 657
    assert (mesh.object_label == BUILDING).all() and (mesh.object_fill == Fill.SOLID).all()
    assert sorted(mesh.object_instance.tolist()) == list(range(1, 658))
    assert len(set(mesh.object_gml_id)) == 657 and mesh.object_gml_id[0] == "uuid_EBE7C667-9BE2-4743-9D73-A6AF75ED2191"
    # origin and data centre near 35.755 N 139.55 E
    assert mesh.origin.lat == pytest.approx(35.7568, abs=0.002) and mesh.origin.lon == pytest.approx(139.553, abs=0.004)
    assert mesh.origin.source_crs == "EPSG:6697" and "+proj=tmerc" in mesh.origin.projected_crs
    lo, hi = mesh.bounds()
    ext = hi - lo
    assert ext[0] == pytest.approx(578, abs=10)  # east-west (x = east)
    assert ext[1] == pytest.approx(389, abs=10)  # north-south
    # heights: all within the tile's envelope 51.6 .. 80.9 m; above-ground heights match measuredHeight
    assert lo[2] == pytest.approx(51.62, abs=0.05) and hi[2] == pytest.approx(80.87, abs=0.05)
    zlo, zhi = per_object_z(mesh)
    h = zhi - zlo
    mh = measured_heights(WEST)
    mh_arr = np.array([mh[g] for g in mesh.object_gml_id])
    assert np.median(h) == pytest.approx(np.median(mh_arr), abs=1.5)
    assert np.median(mh_arr) == pytest.approx(7, abs=1)
    assert h.max() == pytest.approx(28, abs=1.5)
    assert np.corrcoef(h, mh_arr)[0, 1] > 0.9
    # the first building: centroid back in lat/lon close to its footprint in the file
    first = mesh.triangles[mesh.tri_object == 0].reshape(-1, 3).mean(axis=0)
    lon, lat = local_to_lonlat(first[:1], first[1:2], mesh.origin.lat, mesh.origin.lon)
    root = etree.parse(str(WEST)).getroot()
    fp = np.fromstring(next(root.iter("{*}lod0FootPrint")).findtext(".//{*}posList"), sep=" ").reshape(-1, 3)
    assert lat[0] == pytest.approx(fp[:-1, 0].mean(), abs=3e-5) and lon[0] == pytest.approx(fp[:-1, 1].mean(), abs=3e-5)


def test_yokosuka_lod2_xlink_solids_closed_and_roof_above_ground():
    mesh = load_city(YOKOSUKA, progress=False)
    assert mesh.n_objects == 13  # the BuildingParts are merged into their parent Building
    gid = {g: i for i, g in enumerate(mesh.object_gml_id)}
    museum = gid["bldg_787d830e-2534-410a-8a2a-a531efeb2533"]  # lod2Solid with 22 xlink surfaceMembers
    tris = mesh.triangles[mesh.tri_object == museum]
    # LOD2 polygons (boundedBy) were used, not the 13-face LOD1 solid (which gives only ~22 triangles)
    assert len(tris) > 30
    assert (edge_use_counts(tris) == 2).all()  # closed surface
    z = tris[:, :, 2]
    assert z.max() == pytest.approx(16.49, abs=0.01) and z.min() == pytest.approx(10.50, abs=0.01)
    parted = next(i for g, i in gid.items() if g.startswith("bldg_16418b2d"))  # 2 BuildingParts, no own geometry
    ptris = mesh.triangles[mesh.tri_object == parted]
    assert len(ptris) > 100 and (edge_use_counts(ptris) % 2 == 0).all()
    # every object encloses positive volume (outward-wound closed shells)
    for o in range(mesh.n_objects):
        t = mesh.triangles[mesh.tri_object == o].astype(np.float64)
        t = t - t.reshape(-1, 3).mean(axis=0)
        vol = np.einsum("ij,ij->i", t[:, 0], np.cross(t[:, 1], t[:, 2])).sum() / 6
        assert vol > 10


def test_southern_tokyo_25_buildings():
    mesh = load_city(SOUTH, progress=False)
    assert mesh.n_objects == 25
    lo, hi = mesh.bounds()
    assert 1.5 < lo[2] < 3 and 40 < hi[2] < 41
    assert mesh.origin.lat == pytest.approx(35.5415, abs=0.001) and mesh.origin.lon == pytest.approx(139.714, abs=0.002)


def test_dem_1066_triangles_terrain():
    mesh = load_city(DEM, progress=False)
    assert mesh.n_triangles == 1066
    assert (mesh.object_label == TERRAIN).all() and (mesh.object_fill == Fill.TERRAIN).all()
    assert mesh.n_objects == 2
    lo, hi = mesh.bounds()
    assert lo[2] == pytest.approx(-0.02, abs=0.01) and hi[2] == pytest.approx(24.2, abs=0.01)
    # terrain faces up (one triangle of the file is a 0.0002 m2 sliver with a horizontal normal)
    t = mesh.triangles.astype(np.float64)
    n = np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0])
    assert (n[:, 2] > 0).sum() >= 1065 and not (n[:, 2] < 0).any()


def test_folder_equals_zip_and_mixed(tmp_path):
    zpath = tmp_path / "plateau.zip"
    with zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(PLATEAU.glob("*.gml")):
            kind = f.name.split("_")[1]
            zf.write(f, f"13100_tokyo_2023_citygml/udx/{kind}/{f.name}")
    a = load_city(PLATEAU, progress=False)
    b = load_city(zpath, progress=False)
    assert a.n_objects == 657 + 13 + 25 + 2
    np.testing.assert_array_equal(a.triangles, b.triangles)
    np.testing.assert_array_equal(a.object_instance, b.object_instance)
    np.testing.assert_array_equal(a.object_label, b.object_label)
    assert a.object_gml_id == b.object_gml_id and a.origin == b.origin
    assert all("!" in s for s in b.source_files)
    assert len(np.unique(a.object_instance)) == a.n_objects
    # deterministic
    c = load_city(PLATEAU, progress=False)
    np.testing.assert_array_equal(a.triangles, c.triangles)
