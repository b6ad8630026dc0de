"""CityGML 2.0 (+ i-UR ADE) reader for PLATEAU files: one file -> ParsedFile (native coordinates).

Streaming: lxml iterparse over `cityObjectMember`/`featureMember`, each feature processed and then freed.
Namespaces are matched by local name only (the i-UR `uro` URI changes between PLATEAU releases).

Feature -> object (one object per top-level city object):
- bldg:Building: per Building and each BuildingPart (merged into the Building's object), geometry is the
  first available of lod2Solid (surfaceMembers may be xlinks "#id" into boundedBy Roof/Wall/Ground
  lod2MultiSurface polygons), lod1Solid, boundedBy surfaces, lod0FootPrint extruded upwards by
  bldg:measuredHeight, lod0RoofEdge extruded downwards by it (-9999 = unknown: skipped and counted).
- dem:ReliefFeature: every Triangle/Polygon of its TIN (trianglePatches) or surfaces -> TERRAIN.
- tran Road/Railway/Track, brid Bridge (+ BridgePart), veg PlantCover/SolitaryVegetationObject,
  frn CityFurniture, wtr WaterBody: the best LOD geometry the feature has (LOD 2, then 1, 3, 4, 0;
  solids before surfaces), xlinks resolved inside the feature.
Everything else is skipped and counted by its element name.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import numpy as np
from lxml import etree

from ..labels import (BRIDGE, BUILDING, CITY_FURNITURE, RAILWAY, ROAD, SIDEWALK, TERRAIN, VEGETATION,
                      WATER)
from .crs import SourceCRS, parse_srs_name
from .errors import CityModelError, MalformedXMLError
from .geometry.polygons import PolygonSoupBuilder, extrude_footprint
from .mesh import Fill
from .parsed import ParsedFile
from .sources import Source
from .xml_safety import HEAD_BYTES, check_prolog, safe_parser_options

XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
GML_ID_KEYS = ("{http://www.opengis.net/gml}id", "{http://www.opengis.net/gml/3.2}id")
UNKNOWN_HEIGHT = -9999.0

# feature element local name -> (label, default fill, fill forced regardless of geometry type?)
FEATURES: dict[str, tuple[int, Fill, bool]] = {
    "Building": (BUILDING, Fill.SOLID, True),
    "ReliefFeature": (TERRAIN, Fill.TERRAIN, True),
    "TINRelief": (TERRAIN, Fill.TERRAIN, True),
    "Road": (ROAD, Fill.SURFACE, True),
    "Railway": (RAILWAY, Fill.SURFACE, True),
    "Track": (SIDEWALK, Fill.SURFACE, True),
    "Bridge": (BRIDGE, Fill.SURFACE, False),
    "PlantCover": (VEGETATION, Fill.SOLID, True),
    "SolitaryVegetationObject": (VEGETATION, Fill.SOLID, True),
    "CityFurniture": (CITY_FURNITURE, Fill.SURFACE, False),
    "WaterBody": (WATER, Fill.SURFACE, True),
}
PART_NAMES = {"Building": ("consistsOfBuildingPart", "BuildingPart"), "Bridge": ("consistsOfBridgePart", "BridgePart")}

_LOD_PROP_RE = re.compile(r"^lod([0-4])(Solid|MultiSolid|Geometry|MultiSurface|TIN)$")
_LOD_ORDER = {2: 0, 1: 1, 3: 2, 4: 3, 0: 4}
_KIND_ORDER = {"Solid": 0, "MultiSolid": 1, "Geometry": 2, "MultiSurface": 3, "TIN": 4}
_SURFACE_TAGS = ("{*}Polygon", "{*}Triangle", "{*}Rectangle")


def local(el: etree._Element) -> str:
    """Local name of an element (namespace dropped)."""
    tag = el.tag
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def gml_id(el: etree._Element) -> str | None:
    for k in GML_ID_KEYS:
        v = el.get(k)
        if v is not None:
            return v
    return None


class _FileContext:
    """Per-file state: CRS, default dimension, the display name for messages."""

    def __init__(self, display: str) -> None:
        self.display = display
        self.crs: SourceCRS | None = None

    def require_crs(self, el: etree._Element) -> SourceCRS:
        if self.crs is None:
            # a geometry before any Envelope: accept an srsName on the feature's geometry, else fail clearly
            srs = None
            for e in el.iter():
                srs = e.get("srsName")
                if srs:
                    break
            self.crs = parse_srs_name(srs, f"{self.display}, line {el.sourceline}")
        return self.crs


def _pos_list_points(pos_list: etree._Element, dim: int, ctx: _FileContext) -> np.ndarray:
    d = int(pos_list.get("srsDimension") or pos_list.get("dimension") or dim)
    text = pos_list.text
    vals = np.fromstring(text, sep=" ") if text and not text.isspace() else np.zeros(0)
    if vals.size % d:
        raise MalformedXMLError(
            f"{ctx.display}, line {pos_list.sourceline}: gml:posList has {vals.size} numbers, not a multiple "
            f"of srsDimension {d} (or holds text that is not a number). Fix: repair or re-download the file.")
    return vals.reshape(-1, d)


def parse_coords(el: etree._Element, dim: int, ctx: _FileContext) -> np.ndarray:
    """Points (N, dim) of a ring element: its gml:posList, a gml:pos sequence or gml:coordinates."""
    if len(el) and el[0].tag.endswith("posList"):  # the PLATEAU case, fast
        return _pos_list_points(el[0], dim, ctx)
    pos_list = el.find("{*}posList")
    if pos_list is not None:
        return _pos_list_points(pos_list, dim, ctx)
    poss = el.findall("{*}pos")
    if poss:
        rows = [np.fromstring(p.text or "", sep=" ") for p in poss]
        if len({len(r) for r in rows}) != 1:
            raise MalformedXMLError(f"{ctx.display}, line {poss[0].sourceline}: gml:pos elements of one ring have "
                                    "different dimensions. Fix: repair or re-download the file.")
        return np.stack(rows)
    coords = el.find("{*}coordinates")
    if coords is not None:
        tuples = (coords.text or "").split()
        try:
            return np.array([[float(v) for v in t.split(",")] for t in tuples])
        except ValueError as e:
            raise MalformedXMLError(f"{ctx.display}, line {coords.sourceline}: gml:coordinates is not a list of "
                                    "'x,y[,z]' tuples. Fix: repair or re-download the file.") from e
    return np.zeros((0, dim))


def _simple_pos_list(surf: etree._Element) -> etree._Element | None:
    """The posList of a surface with only an exterior LinearRing/posList and no own srsDimension, else None."""
    if len(surf) != 1:
        return None
    ext = surf[0]
    if not ext.tag.endswith("exterior") or len(ext) != 1:
        return None
    ring = ext[0]
    if not ring.tag.endswith("LinearRing") or len(ring) != 1:
        return None
    pos_list = ring[0]
    if not pos_list.tag.endswith("posList") or pos_list.get("srsDimension") or pos_list.get("dimension"):
        return None
    return pos_list


def polygon_rings(poly: etree._Element, dim: int, ctx: _FileContext) -> list[np.ndarray]:
    """Rings of a gml:Polygon/Triangle/Rectangle: exterior first, then interiors ((N, 3) arrays)."""
    rings: list[np.ndarray] = []
    for boundary in poly:
        tag = boundary.tag
        if not isinstance(tag, str) or not tag.endswith(("exterior", "interior")):
            continue
        for ring in boundary:
            if not isinstance(ring.tag, str) or not ring.tag.endswith("LinearRing"):
                continue
            pts = parse_coords(ring, dim, ctx)
            if pts.shape[1] == 2:
                pts = np.column_stack([pts, np.zeros(len(pts))])
            elif pts.shape[1] > 3:
                pts = pts[:, :3]
            if not rings and not tag.endswith("exterior"):
                return []
            rings.append(pts)
    return rings


class _IdIndex:
    """gml:id -> element within one feature, built lazily on the first xlink."""

    def __init__(self, root: etree._Element) -> None:
        self._root = root
        self._map: dict[str, etree._Element] | None = None

    def get(self, href: str) -> etree._Element | None:
        if self._map is None:
            self._map = {}
            for e in self._root.iter():
                i = gml_id(e)
                if i is not None:
                    self._map[i] = e
        return self._map.get(href.split("#", 1)[-1])


def iter_surfaces(el: etree._Element, ids: _IdIndex, unresolved: list[int], depth: int = 0) -> Iterator[etree._Element]:
    """Every Polygon/Triangle/Rectangle under el, following xlink:href references (inside the feature)."""
    if local(el) in ("Polygon", "Triangle", "Rectangle"):
        yield el
        return
    yield from el.iter(*_SURFACE_TAGS)
    if depth > 4:
        return
    for ref in el.iterfind(".//*[@xlink:href]", namespaces={"xlink": "http://www.w3.org/1999/xlink"}):
        target = ids.get(ref.get(XLINK_HREF))
        if target is None:
            unresolved[0] += 1
            continue
        yield from iter_surfaces(target, ids, unresolved, depth + 1)


def best_lod_property(unit: etree._Element) -> tuple[etree._Element, str] | None:
    """The unit's preferred direct lodN geometry property and its kind ('Solid', 'MultiSurface', ...)."""
    best = None
    for child in unit:
        m = _LOD_PROP_RE.match(local(child))
        if m is None or len(child) == 0 and child.get(XLINK_HREF) is None:
            continue
        rank = (_LOD_ORDER[int(m.group(1))], _KIND_ORDER[m.group(2)])
        if best is None or rank < best[0]:
            best = (rank, child, m.group(2))
    return (best[1], best[2]) if best else None


def _measured_height(unit: etree._Element) -> float | None:
    h = unit.find("{*}measuredHeight")
    if h is None or not (h.text or "").strip():
        return None
    try:
        v = float(h.text)
    except ValueError:
        return None
    return None if v <= UNKNOWN_HEIGHT + 0.5 or v <= 0 else v


class _FeatureReader:
    """Turns one top-level feature element into polygons of one object."""

    def __init__(self, ctx: _FileContext, builder: PolygonSoupBuilder, out: ParsedFile) -> None:
        self.ctx = ctx
        self.builder = builder
        self.out = out
        self.fid = ""  # gml:id of the feature being read (named by the geometry problem summary)

    def _add_surfaces(self, obj: int, geom: etree._Element, ids: _IdIndex, dim: int) -> int:
        """Add every surface under geom (following xlinks) to object obj; returns the number added."""
        unresolved = [0]
        seen: dict[int, etree._Element] = {}  # values keep the proxies alive, so id() stays unique
        simple: list[etree._Element] = []  # exterior-only surfaces whose ring is one plain posList
        n = 0
        for surf in iter_surfaces(geom, ids, unresolved):
            key = id(surf)
            if key in seen:
                continue
            seen[key] = surf
            pos_list = _simple_pos_list(surf)
            if pos_list is not None:
                simple.append(pos_list)
            elif self.builder.add_polygon(obj, polygon_rings(surf, dim, self.ctx)):
                n += 1
            else:
                self.out.flag("degenerate_polygons", [self.fid])
        if simple:
            n += self._add_simple(obj, simple, dim)
        if unresolved[0]:
            self.out.count("unresolved_xlinks", unresolved[0])
        return n

    def _add_simple(self, obj: int, pos_lists: list[etree._Element], dim: int) -> int:
        """Parse many single-ring posLists with one numpy call ('nan' separates them), then add them."""
        texts = [p.text or "" for p in pos_lists]
        vals = np.fromstring(" nan ".join(texts), sep=" ") if texts else np.zeros(0)
        sep = np.flatnonzero(np.isnan(vals))
        counts = np.diff(np.concatenate(([-1], sep, [len(vals)]))) - 1
        if len(counts) != len(texts) or (counts % dim).any():
            # something is off (a stray 'nan', text that is not a number, a bad count): find and name it
            rings = [_pos_list_points(p, dim, self.ctx) for p in pos_lists]
            coords = np.concatenate([r[:, :3] if r.shape[1] >= 3 else
                                     np.column_stack([r, np.zeros(len(r))]) for r in rings])
            lengths = np.array([len(r) for r in rings], dtype=np.int64)
        else:
            pts = vals[~np.isnan(vals)].reshape(-1, dim)
            coords = pts if dim == 3 else np.column_stack([pts[:, :2], np.zeros(len(pts))])
            lengths = counts // dim
        n = self.builder.add_simple_polygons(obj, coords, lengths)
        if n < len(lengths):
            self.out.flag("degenerate_polygons", [self.fid], len(lengths) - n)
        return n

    def _building_unit(self, obj: int, unit: etree._Element, ids: _IdIndex, dim: int) -> int:
        for name in ("lod2Solid", "lod1Solid"):
            prop = unit.find("{*}" + name)
            if prop is not None:
                n = self._add_surfaces(obj, prop, ids, dim)
                if n:
                    return n
        bounded = [b for b in unit.findall("{*}boundedBy")]
        n = sum(self._add_surfaces(obj, b, ids, dim) for b in bounded)
        if n:
            return n
        for name, upward in (("lod0FootPrint", True), ("lod0RoofEdge", False)):
            prop = unit.find("{*}" + name)
            if prop is None:
                continue
            height = _measured_height(unit)
            if height is None:
                self.out.count("bldg_unknown_height")
                return 0
            for surf in iter_surfaces(prop, ids, [0]):
                rings = polygon_rings(surf, dim, self.ctx)
                if not rings:
                    continue
                z = float(rings[0][:, 2].min()) if upward else float(rings[0][:, 2].max())
                bottom, top = (z, z + height) if upward else (z - height, z)
                for poly in extrude_footprint(rings, bottom, top):
                    n += int(self.builder.add_polygon(obj, poly))
            return n
        return 0

    def _generic_unit(self, obj: int, unit: etree._Element, ids: _IdIndex, dim: int) -> tuple[int, bool]:
        best = best_lod_property(unit)
        if best is not None:
            prop, kind = best
            n = self._add_surfaces(obj, prop, ids, dim)
            if n:
                solid = kind in ("Solid", "MultiSolid") or (
                    kind == "Geometry" and next(prop.iter("{*}Solid", "{*}CompositeSolid"), None) is not None)
                return n, solid
        n = sum(self._add_surfaces(obj, b, ids, dim) for b in unit.findall("{*}boundedBy"))
        return n, False

    def read(self, feature: etree._Element) -> None:
        name = local(feature)
        spec = FEATURES.get(name)
        if spec is None:
            self.out.count(name or "unknown_feature")
            return
        label, fill, forced = spec
        crs = self.ctx.require_crs(feature)
        dim = crs.dimension
        obj = self.out.n_objects
        fid = gml_id(feature) or f"{self.ctx.display}#{obj}"
        self.fid = fid
        ids = _IdIndex(feature)
        units = [feature]
        if name in PART_NAMES:
            prop_name, part_name = PART_NAMES[name]
            for prop in feature.findall("{*}" + prop_name):
                units.extend(prop.findall("{*}" + part_name))
        n = 0
        any_solid = False
        if name == "Building":
            for unit in units:
                n += self._building_unit(obj, unit, ids, dim)
        elif label == TERRAIN:
            n = self._add_surfaces(obj, feature, ids, dim)
        else:
            for unit in units:
                k, solid = self._generic_unit(obj, unit, ids, dim)
                n += k
                any_solid |= solid and k > 0
        if n == 0:
            self.out.count(f"{name}_without_geometry")
            return
        if not forced:
            fill = Fill.SOLID if any_solid else Fill.SURFACE
        self.out.gml_ids.append(fid)
        self.out.labels.append(label)
        self.out.fills.append(int(fill))


_MEMBER_TAGS = ("{*}Envelope", "{*}cityObjectMember", "{*}featureMember", "{*}featureMembers")


def _iter_members(stream, source: Source) -> Iterator[etree._Element]:
    """Yield Envelope and member elements (already complete) while streaming; free them afterwards."""
    context = etree.iterparse(stream, events=("end",), tag=_MEMBER_TAGS, **safe_parser_options())
    try:
        for _event, el in context:
            yield el
            if local(el) != "Envelope":
                el.clear(keep_tail=False)
                parent = el.getparent()
                if parent is not None:
                    while el.getprevious() is not None:
                        del parent[0]
    except etree.XMLSyntaxError as e:
        line = getattr(e, "lineno", None) or (e.position[0] if getattr(e, "position", None) else "?")
        msg = getattr(e, "msg", None) or str(e)
        raise MalformedXMLError(
            f"{source.display}, line {line}: malformed XML: {msg}. Fix: the file is damaged or truncated; "
            "re-download it (or pass strict=False / leave out --strict to skip it and go on).") from e


def read_gml(source: Source) -> ParsedFile:
    """Read one CityGML file into a ParsedFile; raises CityModelError subclasses on bad input."""
    with source.open() as f:
        check_prolog(f.read(HEAD_BYTES), source.display)
    ctx = _FileContext(source.display)
    builder = PolygonSoupBuilder()
    out = ParsedFile(source.display, SourceCRS(6697), None, [], [], [])  # type: ignore[arg-type]
    reader = _FeatureReader(ctx, builder, out)
    saw_root_envelope = False
    with source.open() as f:
        for el in _iter_members(f, source):
            name = local(el)
            if name == "Envelope":
                parent = el.getparent()
                is_root = parent is not None and parent.getparent() is not None and parent.getparent().getparent() is None
                if is_root and not saw_root_envelope:
                    saw_root_envelope = True
                    ctx.crs = parse_srs_name(el.get("srsName"), f"{source.display}, line {el.sourceline} (gml:Envelope)")
                continue
            features = [c for c in el if isinstance(c.tag, str)] if name != "featureMembers" else list(el)
            for feature in features:
                reader.read(feature)
    if ctx.crs is None:
        raise CityModelError(
            f"{source.display}: no gml:Envelope with an srsName and no city objects found; this does not look like "
            "PLATEAU CityGML. Fix: pass the udx/<type>/*.gml files of a PLATEAU download.")
    out.crs = ctx.crs
    out.soup = builder.build()
    if builder.n_dropped:
        out.flag("degenerate_polygons", [out.gml_ids[o] for o in builder.dropped_objects[:50] if o < out.n_objects],
                 builder.n_dropped)
    out.n_bytes = source.size()
    return out
