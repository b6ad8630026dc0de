"""Feature types beyond buildings (rwy, frn, brid surfaces, veg, wtr), other-element skips, EPSG:6668 2D."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from occworld_tokyo.citymodel import Fill, load_city
from occworld_tokyo.labels import BRIDGE, CITY_FURNITURE, RAILWAY, ROAD, WATER

NS = ('xmlns:core="http://www.opengis.net/citygml/2.0" xmlns:gml="http://www.opengis.net/gml" '
      'xmlns:tran="http://www.opengis.net/citygml/transportation/2.0" '
      'xmlns:brid="http://www.opengis.net/citygml/bridge/2.0" '
      'xmlns:frn="http://www.opengis.net/citygml/cityfurniture/2.0" '
      'xmlns:wtr="http://www.opengis.net/citygml/waterbody/2.0" '
      'xmlns:grp="http://www.opengis.net/citygml/cityobjectgroup/2.0"')
SQUARE3 = "35.6900 139.7000 40 35.6900 139.7002 40 35.6902 139.7002 40 35.6902 139.7000 40 35.6900 139.7000 40"
SQUARE2 = "35.6900 139.7000 35.6900 139.7002 35.6902 139.7002 35.6902 139.7000 35.6900 139.7000"


def doc(members: str, epsg: int = 6697, dim: int = 3) -> str:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<core:CityModel {NS}>\n<gml:boundedBy><gml:Envelope '
            f'srsName="http://www.opengis.net/def/crs/EPSG/0/{epsg}" srsDimension="{dim}"/></gml:boundedBy>\n'
            f"{members}\n</core:CityModel>\n")


def multi_surface(pos: str = SQUARE3) -> str:
    return (f"<gml:MultiSurface><gml:surfaceMember><gml:Polygon><gml:exterior><gml:LinearRing><gml:posList>{pos}"
            "</gml:posList></gml:LinearRing></gml:exterior></gml:Polygon></gml:surfaceMember></gml:MultiSurface>")


def member(xml: str) -> str:
    return f"<core:cityObjectMember>{xml}</core:cityObjectMember>"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_rwy_frn_brid_wtr_and_skipped_elements(tmp_path):
    udx = tmp_path / "udx"
    write(udx / "rwy" / "53394526_rwy_6697_op.gml", doc(member(
        f'<tran:Railway gml:id="rw1"><tran:lod1MultiSurface>{multi_surface()}</tran:lod1MultiSurface></tran:Railway>')))
    write(udx / "frn" / "53394526_frn_6697_op.gml", doc(member(
        f'<frn:CityFurniture gml:id="fr1"><frn:lod1Geometry>{multi_surface()}</frn:lod1Geometry></frn:CityFurniture>')
        + member('<grp:CityObjectGroup gml:id="g1"/>')))
    write(udx / "brid" / "53394526_brid_6697_op.gml", doc(member(
        f'<brid:Bridge gml:id="br1"><brid:lod2MultiSurface>{multi_surface()}</brid:lod2MultiSurface>'
        f'<brid:lod1MultiSurface>{multi_surface(SQUARE3.replace(" 40", " 99"))}</brid:lod1MultiSurface></brid:Bridge>')))
    write(udx / "wtr" / "53394526_wtr_6697_op.gml", doc(member(
        f'<wtr:WaterBody gml:id="w1"><wtr:lod1MultiSurface>{multi_surface()}</wtr:lod1MultiSurface></wtr:WaterBody>')))
    mesh = load_city(tmp_path, progress=False)
    by_id = dict(zip(mesh.object_gml_id, zip(mesh.object_label.tolist(), mesh.object_fill.tolist())))
    assert by_id == {"rw1": (RAILWAY, Fill.SURFACE), "fr1": (CITY_FURNITURE, Fill.SURFACE),
                     "br1": (BRIDGE, Fill.SURFACE), "w1": (WATER, Fill.SURFACE)}
    assert mesh.skipped == {"CityObjectGroup": 1}
    br = mesh.triangles[mesh.tri_object == mesh.object_gml_id.index("br1")]
    assert np.allclose(br[:, :, 2], 40.0)  # LOD2 preferred over LOD1
    assert mesh.n_triangles == 4 * 2


def test_epsg6668_two_dimensional(tmp_path):
    f = write(tmp_path / "53394526_tran_6668_op.gml", doc(member(
        f'<tran:Road gml:id="r1"><tran:lod1MultiSurface>{multi_surface(SQUARE2)}</tran:lod1MultiSurface></tran:Road>'),
        epsg=6668, dim=2))
    mesh = load_city(f, progress=False)
    assert mesh.object_label.tolist() == [ROAD] and mesh.origin.source_crs == "EPSG:6668"
    lo, hi = mesh.bounds()
    assert lo[2] == hi[2] == 0.0
    assert hi[0] - lo[0] == pytest.approx(0.0002 * 90_500, rel=0.01)  # 0.0002 deg of longitude at 35.69 N
    assert hi[1] - lo[1] == pytest.approx(0.0002 * 110_950, rel=0.01)
