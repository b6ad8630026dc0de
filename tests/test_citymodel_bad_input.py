"""Bad input to load_city: each case gives a clear CityModelError subclass naming the file and the fix."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from lxml import etree

from occworld_tokyo.citymodel import (CityModelError, CityModelWarning, CoordinateRangeError, CRSError,
                                      MalformedXMLError, UnsafeXMLError, load_city)
from occworld_tokyo.citymodel.xml_safety import safe_parser_options

SRS = "http://www.opengis.net/def/crs/EPSG/0/6697"


def building_gml(pos: str = "35.690 139.700 40.0 35.690 139.7001 40.0 35.6901 139.7001 40.0 35.690 139.700 40.0",
                 srs: str | None = SRS, doctype: str = "", height: str = "10.0") -> str:
    """A minimal PLATEAU-like file: one building with an lod0 footprint (extruded by measuredHeight)."""
    srs_attr = f' srsName="{srs}"' if srs is not None else ""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
{doctype}<core:CityModel xmlns:core="http://www.opengis.net/citygml/2.0" xmlns:gml="http://www.opengis.net/gml"
 xmlns:bldg="http://www.opengis.net/citygml/building/2.0">
<gml:boundedBy><gml:Envelope{srs_attr} srsDimension="3"><gml:lowerCorner>0 0 0</gml:lowerCorner>
<gml:upperCorner>0 0 0</gml:upperCorner></gml:Envelope></gml:boundedBy>
<core:cityObjectMember><bldg:Building gml:id="b1">
<bldg:measuredHeight uom="m">{height}</bldg:measuredHeight>
<bldg:lod0FootPrint><gml:MultiSurface><gml:surfaceMember><gml:Polygon><gml:exterior><gml:LinearRing>
<gml:posList>{pos}</gml:posList>
</gml:LinearRing></gml:exterior></gml:Polygon></gml:surfaceMember></gml:MultiSurface></bldg:lod0FootPrint>
</bldg:Building></core:cityObjectMember>
</core:CityModel>
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_good_minimal_file_reads(tmp_path):
    mesh = load_city(write(tmp_path / "53394526_bldg_6697_op.gml", building_gml()), progress=False)
    assert mesh.n_objects == 1 and mesh.n_triangles == 2 + 3 * 2  # triangular footprint: bottom + top + 3 quad walls
    lo, hi = mesh.bounds()
    assert lo[2] == pytest.approx(40.0) and hi[2] == pytest.approx(50.0)


def test_missing_path(tmp_path):
    with pytest.raises(CityModelError, match="no such file or folder") as e:
        load_city(tmp_path / "nope", progress=False)
    assert str(tmp_path / "nope") in str(e.value) and "Fix" in str(e.value)


def test_empty_folder_and_no_supported_files(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CityModelError, match="no supported city-model files") as e:
        load_city(tmp_path / "empty", progress=False)
    assert "no files at all" in str(e.value)
    other = tmp_path / "other"
    write(other / "readme.txt", "hello")
    write(other / "udx" / "luse" / "53394526_luse_6697_op.gml", building_gml())
    with pytest.raises(CityModelError, match="no supported city-model files") as e:
        load_city(other, progress=False)
    msg = str(e.value)
    assert ".txt" in msg and ".gml" in msg and "'luse': 1" in msg


def test_unknown_feature_types_skipped_with_count(tmp_path):
    write(tmp_path / "udx" / "luse" / "53394526_luse_6697_op.gml", building_gml())
    write(tmp_path / "udx" / "bldg" / "53394526_bldg_6697_op.gml", building_gml())
    mesh = load_city(tmp_path, progress=False)
    assert mesh.n_objects == 1 and mesh.skipped == {"luse": 1}


def test_unknown_height_skipped_with_count(tmp_path):
    write(tmp_path / "a" / "53394526_bldg_6697_op.gml", building_gml())
    write(tmp_path / "b" / "53394527_bldg_6697_op.gml", building_gml(height="-9999"))
    mesh = load_city(tmp_path, progress=False)
    assert mesh.n_objects == 1 and mesh.skipped["bldg_unknown_height"] == 1


def test_malformed_xml_names_file_and_line(tmp_path):
    text = building_gml().replace("</bldg:Building>", "</bldg:Buildin>")
    bad_line = text.splitlines().index("</bldg:Buildin></core:cityObjectMember>") + 1
    bad = write(tmp_path / "in" / "53394527_bldg_6697_op.gml", text)
    write(tmp_path / "in" / "53394526_bldg_6697_op.gml", building_gml())
    with pytest.raises(MalformedXMLError) as e:
        load_city(tmp_path / "in", strict=True, progress=False)
    assert str(bad) in str(e.value) and f"line {bad_line}" in str(e.value)
    # not strict: the other file goes on, a warning is given and counted
    with pytest.warns(CityModelWarning, match=f"line {bad_line}"):
        mesh = load_city(tmp_path / "in", strict=False, progress=False)
    assert mesh.n_objects == 1 and mesh.skipped["malformed_xml"] == 1
    # a single malformed file: nothing to load -> error naming it, even when not strict
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CityModelWarning)
        with pytest.raises(CityModelError, match="no city objects could be read"):
            load_city(bad, progress=False)


def test_truncated_poslist_is_malformed(tmp_path):
    f = write(tmp_path / "53394526_bldg_6697_op.gml", building_gml(pos="35.690 139.700 40.0 35.690 139.7001"))
    with pytest.raises(MalformedXMLError, match="srsDimension 3"):
        load_city(f, strict=True, progress=False)


BOMB = """<!DOCTYPE core:CityModel [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
"""
XXE_FILE = '<!DOCTYPE core:CityModel [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>\n'
XXE_HTTP = '<!DOCTYPE core:CityModel SYSTEM "http://example.invalid/evil.dtd">\n'


@pytest.mark.parametrize("doctype", [BOMB, XXE_FILE, XXE_HTTP], ids=["billion-laughs", "file-entity", "http-dtd"])
def test_entity_bomb_and_external_entities_refused(tmp_path, doctype):
    text = building_gml(doctype=doctype).replace("<gml:name>", "")
    text = text.replace('gml:id="b1">', 'gml:id="b1">\n<gml:name>&lol3;&xxe;</gml:name>') if "ENTITY" in doctype else text
    f = write(tmp_path / "53394526_bldg_6697_op.gml", text)
    for strict in (False, True):
        with pytest.raises(UnsafeXMLError, match="refused") as e:
            load_city(f, strict=strict, progress=False)
        assert str(f) in str(e.value) and "root:" not in str(e.value)


def test_parser_options_never_expand_entities():
    """Defence in depth: even without the DOCTYPE check, the parser keeps entities unexpanded and offline."""
    doc = (XXE_FILE + '<core:CityModel xmlns:core="http://www.opengis.net/citygml/2.0">&xxe;</core:CityModel>').encode()
    root = etree.fromstring(doc, etree.XMLParser(**safe_parser_options()))
    assert "root:" not in etree.tostring(root).decode()
    assert (root.text or "") == ""


def test_swapped_axis_order_detected(tmp_path):
    swapped = "139.700 35.690 40.0 139.7001 35.690 40.0 139.7001 35.6901 40.0 139.700 35.690 40.0"
    f = write(tmp_path / "53394526_bldg_6697_op.gml", building_gml(pos=swapped))
    with pytest.raises(CoordinateRangeError, match="axis order may be swapped") as e:
        load_city(f, progress=False)
    assert str(f) in str(e.value)


def test_implausible_heights_detected(tmp_path):
    pos = "35.690 139.700 9000.0 35.690 139.7001 9000.0 35.6901 139.7001 9000.0 35.690 139.700 9000.0"
    f = write(tmp_path / "53394526_bldg_6697_op.gml", building_gml(pos=pos))
    with pytest.raises(CoordinateRangeError, match="height 9000"):
        load_city(f, progress=False)


def test_missing_and_unsupported_crs(tmp_path):
    f = write(tmp_path / "a" / "53394526_bldg_6697_op.gml", building_gml(srs=None))
    with pytest.raises(CRSError, match="no srsName") as e:
        load_city(f, progress=False)
    assert str(f) in str(e.value) and "EPSG/0/6697" in str(e.value)
    g = write(tmp_path / "b" / "53394526_bldg_6697_op.gml",
              building_gml(srs="http://www.opengis.net/def/crs/EPSG/0/3857"))
    with pytest.raises(CRSError, match="EPSG:3857.*not supported"):
        load_city(g, progress=False)


def test_obj_without_type_in_name(tmp_path):
    f = write(tmp_path / "model.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    with pytest.raises(CityModelError, match="_<type>_<epsg>.obj"):
        load_city(f, progress=False)


def test_utf16_entity_bomb_refused(tmp_path):
    text = building_gml(doctype=BOMB).replace('encoding="UTF-8"', 'encoding="UTF-16"')
    f = tmp_path / "53394526_bldg_6697_op.gml"
    f.write_bytes(text.encode("utf-16"))
    with pytest.raises(UnsafeXMLError, match="ENTITY"):
        load_city(f, progress=False)
