"""OBJ exports (EPSG:6677, X north / Y east), triangulation of polygons with holes, and the local frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pyproj import Transformer

from occworld_tokyo.citymodel import Fill, load_city
from occworld_tokyo.citymodel.crs import SourceCRS, local_to_lonlat, lonlat_to_local, native_to_local
from occworld_tokyo.citymodel.geometry.polygons import PolygonSoupBuilder
from occworld_tokyo.citymodel.geometry.triangulate import triangulate
from occworld_tokyo.citymodel.sample_city import write_sample_district
from occworld_tokyo.labels import BUILDING, ROAD


def write_obj(path: Path, tris_6677: np.ndarray, groups: list[tuple[str, int]] | None) -> Path:
    """Triangle soup as OBJ ('v X Y Z', 1-based faces); groups = [(name, n_triangles), ...] or None."""
    lines = [f"v {x:.4f} {y:.4f} {z:.4f}" for x, y, z in tris_6677.reshape(-1, 3)]
    faces = [f"f {3 * i + 1} {3 * i + 2} {3 * i + 3}" for i in range(len(tris_6677))]
    if groups:
        out, k = [], 0
        for name, n in groups:
            out.append(f"o {name}")
            out.extend(faces[k:k + n])
            k += n
        faces = out
    path.write_text("# test export\n" + "\n".join(lines + faces) + "\n")
    return path


def test_obj_lands_where_the_same_gml_geometry_does(tmp_path):
    gml_dir = tmp_path / "sample"
    write_sample_district(gml_dir, seed=0, size_m=200.0)
    bldg = gml_dir / "udx" / "bldg" / "53394526_bldg_6697_op.gml"
    ref = load_city(bldg, progress=False)
    # the GML mesh back to lat/lon, then to EPSG:6677 with pyproj's own EPSG definitions (independent path)
    pts = ref.triangles.reshape(-1, 3).astype(np.float64)
    lon, lat = local_to_lonlat(pts[:, 0], pts[:, 1], ref.origin.lat, ref.origin.lon)
    north, east = Transformer.from_crs("EPSG:6668", "EPSG:6677").transform(lat, lon)  # EPSG axis order: X=north
    tris_6677 = np.column_stack([north, east, pts[:, 2]]).reshape(-1, 3, 3)
    groups = [(g, int((ref.tri_object == i).sum())) for i, g in enumerate(ref.object_gml_id)]
    obj = write_obj(tmp_path / "53394526_bldg_6677.obj", tris_6677, groups)
    both = load_city([bldg, obj], progress=False)
    assert both.n_objects == 2 * ref.n_objects
    assert both.origin.source_crs == "EPSG:6677+EPSG:6697"
    is_obj = np.array(["6677.obj:" in g for g in both.object_gml_id])
    assert (both.object_label == BUILDING).all() and (both.object_fill == Fill.SOLID).all()
    a = both.triangles[~is_obj[both.tri_object]]
    b = both.triangles[is_obj[both.tri_object]]
    np.testing.assert_allclose(a, b, atol=0.01)  # same place to 1 cm
    assert len(set(both.object_instance.tolist())) == both.n_objects
    # alone, the OBJ gives the same objects with the same names
    alone = load_city(obj, progress=False)
    assert alone.object_gml_id == [f"53394526_bldg_6677.obj:{g}" for g in ref.object_gml_id]


def test_obj_without_groups_splits_connected_faces(tmp_path):
    def box(x0: float) -> np.ndarray:
        v = np.array([[x0, 0, 0], [x0 + 1, 0, 0], [x0 + 1, 1, 0], [x0, 1, 0]], dtype=float)
        return np.array([[v[0], v[1], v[2]], [v[0], v[2], v[3]]])
    base = np.array([-30000.0, -10000.0, 30.0])
    tris = np.concatenate([box(0), box(5), box(10)]) + base  # three separate squares (2 triangles each)
    obj = write_obj(tmp_path / "53394526_tran_6677.obj", tris, None)
    mesh = load_city(obj, progress=False)
    assert mesh.n_objects == 3 and (mesh.object_label == ROAD).all() and (mesh.object_fill == Fill.SURFACE).all()
    assert np.bincount(mesh.tri_object).tolist() == [2, 2, 2]
    # X = north, Y = east: the squares are spaced along OBJ X, i.e. along local north (y)
    c = np.array([mesh.triangles[mesh.tri_object == i].reshape(-1, 3).mean(axis=0) for i in range(3)])
    assert np.diff(c[:, 1]) == pytest.approx([5.0, 5.0], abs=0.01)
    assert np.abs(np.diff(c[:, 0])).max() < 0.01


def test_triangulation_with_holes_and_concave_rings():
    b = PolygonSoupBuilder()
    sq = lambda a, z=0.0: np.array([[-a, -a, z], [a, -a, z], [a, a, z], [-a, a, z], [-a, -a, z]])
    # a vertical wall with a window (hole), given with the repeated closing vertex
    wall = np.array([[0, 0, 0], [10, 0, 0], [10, 0, 6], [0, 0, 6], [0, 0, 0]], dtype=float)
    window = np.array([[2, 0, 2], [4, 0, 2], [4, 0, 4], [2, 0, 4]], dtype=float)
    b.add_polygon(0, [wall, window])
    b.add_polygon(1, [sq(10), sq(5)[::-1]])  # square with a square hole
    b.add_polygon(2, [np.array([[0, 0, 0], [4, 0, 0], [1, 1, 0], [4, 4, 0], [0, 4, 0]], dtype=float)])  # concave
    b.add_polygon(3, [np.array([[0, 0, 0], [2, 0, 0], [2, 0.2, 0], [0.2, 0.2, 0]], dtype=float)])  # concave quad-ish
    b.add_polygon(4, [np.array([[0, 0, 0], [1, 0, 0], [2, 0, 0]], dtype=float)])  # degenerate (collinear)
    soup = b.build()
    tris, poly, bad = triangulate(soup)
    area = 0.5 * np.linalg.norm(np.cross(tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0]), axis=1)
    per = np.bincount(poly, weights=area, minlength=5)
    # wall 60 - window 4; 400 - 100; concave pentagon (shoelace) 10; trapezoid 0.2 * (2 + 1.8) / 2
    assert per[:4] == pytest.approx([56.0, 300.0, 10.0, 0.38], abs=1e-9)
    assert per[4] == 0 and bad == 1
    # triangles wound like their polygon: the wall's ring is counter-clockwise seen from -y
    n = np.cross(tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0])
    assert (n[poly == 0][:, 1] < 0).all() and (n[poly == 1][:, 2] > 0).all()
    # holes stay empty: no triangle centroid inside the window or the inner square
    c = tris.mean(axis=1)
    w = c[poly == 0]
    assert not ((w[:, 0] > 2) & (w[:, 0] < 4) & (w[:, 2] > 2) & (w[:, 2] < 4)).any()
    s = c[poly == 1]
    assert not ((np.abs(s[:, 0]) < 5) & (np.abs(s[:, 1]) < 5)).any()


@pytest.mark.parametrize("lat,lon", [(35.69, 139.70), (43.06, 141.35), (26.21, 127.68), (33.59, 130.40)],
                         ids=["tokyo", "sapporo", "naha", "fukuoka"])
def test_local_frame_is_metric_anywhere_in_japan(lat, lon):
    """1 km east / north of the centre is 1 km in the frame, in every region (no zone hard-coded)."""
    geod = __import__("pyproj").Geod(ellps="GRS80")
    for az, axis in ((90.0, 0), (0.0, 1)):
        lon2, lat2, _ = geod.fwd(lon, lat, az, 1000.0)
        x, y = lonlat_to_local(np.array([lon2]), np.array([lat2]), lat, lon)
        assert (x[0], y[0])[axis] == pytest.approx(1000.0, abs=0.01)
        assert (x[0], y[0])[1 - axis] == pytest.approx(0.0, abs=1.0)
    # native lat, lon, height order of EPSG:6697 and the inverse
    p = native_to_local(SourceCRS(6697), np.array([[lat, lon, 12.5]]), lat, lon)
    assert p[0] == pytest.approx([0.0, 0.0, 12.5], abs=1e-6)
    back = local_to_lonlat(np.array([250.0]), np.array([-125.0]), lat, lon)
    again = lonlat_to_local(back[0], back[1], lat, lon)
    assert again[0][0] == pytest.approx(250.0, abs=1e-6) and again[1][0] == pytest.approx(-125.0, abs=1e-6)
