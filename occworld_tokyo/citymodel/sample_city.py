"""The embedded default: a Tokyo-like sample district written as PLATEAU-style CityGML, read back by load_city.

`write_sample_district(out_dir, seed=0, size_m=600)` writes, in PLATEAU's layout,

    udx/bldg/<mesh8>_bldg_6697_op.gml   buildings: LOD1 solids (most), LOD2 gable-roof solids whose
                                        surfaceMembers are xlinks into boundedBy Roof/Wall/Ground surfaces,
                                        courtyard blocks (polygons with interior rings), towers made of two
                                        BuildingParts (the parent Building has no geometry); 6 m .. 200 m
    udx/tran/<mesh8>_tran_6697_op.gml   streets as tran:Road lod1MultiSurface (a grid, one wide avenue)
    udx/brid/<mesh8>_brid_6697_op.gml   a pedestrian bridge deck (lod1Solid) across the avenue, 6 m clear
    udx/veg/<mesh8>_veg_6697_op.gml     street and park trees (SolitaryVegetationObject), a hedge (PlantCover)
    udx/wtr/<mesh8>_wtr_6697_op.gml     a pond in the park (WaterBody lod1MultiSurface)
    udx/dem/<mesh6>_dem_6697_op.gml     terrain TIN (25 m triangles) on a gentle slope, ground ~35-40 m

in EPSG:6697 (latitude, longitude, height) around 35.690 N, 139.700 E (Nishi-Shinjuku), with i-UR-like
namespaces. Everything is drawn from numpy's PCG64 generator seeded with `seed`, and numbers are written
with fixed precision, so the same seed gives byte-identical files.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field, replace
from typing import Callable
from pathlib import Path

import numpy as np

from .crs import local_to_lonlat
from .mesh import CityMesh
from .meshcode import mesh_code  # noqa: F401  (re-exported: the district's file names)

CENTER_LAT = 35.690
CENTER_LON = 139.700
GENERATOR_VERSION = "1"
BLOCK_PITCH = 100.0  # street centreline spacing (m)
STREET_WIDTH = 16.0
AVENUE_WIDTH = 30.0
MAX_HEIGHT = 200.0

NAMESPACES = {
    "core": "http://www.opengis.net/citygml/2.0",
    "gml": "http://www.opengis.net/gml",
    "xlink": "http://www.w3.org/1999/xlink",
    "bldg": "http://www.opengis.net/citygml/building/2.0",
    "tran": "http://www.opengis.net/citygml/transportation/2.0",
    "brid": "http://www.opengis.net/citygml/bridge/2.0",
    "veg": "http://www.opengis.net/citygml/vegetation/2.0",
    "wtr": "http://www.opengis.net/citygml/waterbody/2.0",
    "dem": "http://www.opengis.net/citygml/relief/2.0",
    "gen": "http://www.opengis.net/citygml/generics/2.0",
    "uro": "https://www.geospatial.jp/iur/uro/3.0",
}


# ----------------------------------------------------------------------------------------------- geometry

def ground_height(x: np.ndarray | float, y: np.ndarray | float) -> np.ndarray | float:
    """Ground height (m above Tokyo Bay MSL) of the district at local (x east, y north): a gentle plane."""
    return 37.5 + 0.004 * np.asarray(x) + 0.0025 * np.asarray(y)


def box_rings(x0: float, y0: float, x1: float, y1: float, z0: float, z1: float) -> list[np.ndarray]:
    """The 6 faces of an axis-aligned box, counter-clockwise seen from outside."""
    return prism_rings(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]), z0, z1)


def prism_rings(ring: np.ndarray, z0: float, z1: float) -> list[np.ndarray]:
    """Faces (single rings) of a prism over a counter-clockwise 2D ring."""
    n = len(ring)
    bottom = np.column_stack([ring[::-1], np.full(n, z0)])
    top = np.column_stack([ring, np.full(n, z1)])
    faces = [bottom, top]
    for i in range(n):
        a, b = ring[i], ring[(i + 1) % n]
        faces.append(np.array([[a[0], a[1], z0], [b[0], b[1], z0], [b[0], b[1], z1], [a[0], a[1], z1]]))
    return faces


def courtyard_polygons(outer: np.ndarray, inner: np.ndarray, z0: float, z1: float) -> list[list[np.ndarray]]:
    """Polygons (rings lists) of a block with a courtyard: bottom/top with a hole, outer and inner walls."""
    polys = [[np.column_stack([outer[::-1], np.full(4, z0)]), np.column_stack([inner, np.full(4, z0)])],
             [np.column_stack([outer, np.full(4, z1)]), np.column_stack([inner[::-1], np.full(4, z1)])]]
    for ring, sign in ((outer, 1), (inner[::-1], -1)):
        for i in range(len(ring)):
            a, b = ring[i], ring[(i + 1) % len(ring)]
            polys.append([np.array([[a[0], a[1], z0], [b[0], b[1], z0], [b[0], b[1], z1], [a[0], a[1], z1]])])
    return polys


def gable_faces(x0: float, y0: float, x1: float, y1: float, z0: float, eave: float, ridge: float
                ) -> list[tuple[str, np.ndarray]]:
    """(surface type, ring) of a gable-roofed house; the ridge runs along x."""
    ym = (y0 + y1) / 2
    return [
        ("GroundSurface", np.array([[x0, y0, z0], [x0, y1, z0], [x1, y1, z0], [x1, y0, z0]])),
        ("WallSurface", np.array([[x0, y0, z0], [x1, y0, z0], [x1, y0, eave], [x0, y0, eave]])),
        ("WallSurface", np.array([[x1, y1, z0], [x0, y1, z0], [x0, y1, eave], [x1, y1, eave]])),
        ("WallSurface", np.array([[x1, y0, z0], [x1, y1, z0], [x1, y1, eave], [x1, ym, ridge], [x1, y0, eave]])),
        ("WallSurface", np.array([[x0, y1, z0], [x0, y0, z0], [x0, y0, eave], [x0, ym, ridge], [x0, y1, eave]])),
        ("RoofSurface", np.array([[x0, y0, eave], [x1, y0, eave], [x1, ym, ridge], [x0, ym, ridge]])),
        ("RoofSurface", np.array([[x1, y1, eave], [x0, y1, eave], [x0, ym, ridge], [x1, ym, ridge]])),
    ]


# ----------------------------------------------------------------------------------------------- XML text

class _Writer:
    """Local metres -> EPSG:6697 posList text, tracking the envelope of what was written."""

    def __init__(self, lat0: float = CENTER_LAT, lon0: float = CENTER_LON) -> None:
        self.lat0, self.lon0 = lat0, lon0
        self.lo = np.array([np.inf, np.inf, np.inf])
        self.hi = -self.lo

    def pos_list(self, ring: np.ndarray, close: bool = True) -> str:
        ring = np.asarray(ring, dtype=np.float64)
        if close:
            ring = np.vstack([ring, ring[:1]])
        lon, lat = local_to_lonlat(ring[:, 0], ring[:, 1], self.lat0, self.lon0)
        pts = np.column_stack([lat, lon, ring[:, 2]])
        self.lo = np.minimum(self.lo, pts.min(axis=0))
        self.hi = np.maximum(self.hi, pts.max(axis=0))
        return " ".join(f"{a:.9f} {b:.9f} {h:.3f}" for a, b, h in pts)

    def polygon(self, rings: list[np.ndarray], gid: str | None = None) -> str:
        attr = f' gml:id="{gid}"' if gid else ""
        parts = [f"<gml:Polygon{attr}><gml:exterior><gml:LinearRing><gml:posList>{self.pos_list(rings[0])}"
                 "</gml:posList></gml:LinearRing></gml:exterior>"]
        for hole in rings[1:]:
            parts.append(f"<gml:interior><gml:LinearRing><gml:posList>{self.pos_list(hole)}</gml:posList>"
                         "</gml:LinearRing></gml:interior>")
        parts.append("</gml:Polygon>")
        return "".join(parts)

    def members(self, polys: list[list[np.ndarray]]) -> str:
        return "\n".join(f"<gml:surfaceMember>{self.polygon(p)}</gml:surfaceMember>" for p in polys)

    def solid(self, polys: list[list[np.ndarray]]) -> str:
        return (f"<gml:Solid><gml:exterior><gml:CompositeSurface>\n{self.members(polys)}\n"
                "</gml:CompositeSurface></gml:exterior></gml:Solid>")

    def multi_surface(self, polys: list[list[np.ndarray]]) -> str:
        return f"<gml:MultiSurface>\n{self.members(polys)}\n</gml:MultiSurface>"

    def document(self, members: list[str]) -> str:
        ns = " ".join(f'xmlns:{k}="{v}"' for k, v in NAMESPACES.items())
        lo = self.lo if np.isfinite(self.lo).all() else np.zeros(3)
        hi = self.hi if np.isfinite(self.hi).all() else np.zeros(3)
        body = "\n".join(f"<core:cityObjectMember>\n{m}\n</core:cityObjectMember>" for m in members)
        return ('<?xml version="1.0" encoding="UTF-8"?>\n'
                f"<core:CityModel {ns}>\n<gml:boundedBy>\n"
                '<gml:Envelope srsName="http://www.opengis.net/def/crs/EPSG/0/6697" srsDimension="3">\n'
                f"<gml:lowerCorner>{lo[0]:.9f} {lo[1]:.9f} {lo[2]:.3f}</gml:lowerCorner>\n"
                f"<gml:upperCorner>{hi[0]:.9f} {hi[1]:.9f} {hi[2]:.3f}</gml:upperCorner>\n"
                f"</gml:Envelope>\n</gml:boundedBy>\n{body}\n</core:CityModel>\n")


def _uro_id(kind: str, n: int) -> str:
    return (f"<uro:{kind}IDAttribute><uro:{kind.capitalize()}IDAttribute><uro:{kind}ID>13104-{kind}-{n:05d}"
            f"</uro:{kind}ID></uro:{kind.capitalize()}IDAttribute></uro:{kind}IDAttribute>")


# ----------------------------------------------------------------------------------------------- layout

@dataclass
class _Plan:
    """The district's layout in local metres (x east, y north), before any XML."""

    half: float
    streets_x: list[tuple[float, float]] = field(default_factory=list)  # (centre x, width) of N-S streets
    streets_y: list[tuple[float, float]] = field(default_factory=list)  # (centre y, width) of E-W streets
    blocks: list[tuple[float, float, float, float]] = field(default_factory=list)
    park: tuple[float, float, float, float] | None = None
    bridge: tuple[float, float, float, float] | None = None  # deck footprint
    # the sample city's tiles (write_sample_city): features are written only where keep(x, y) says so
    keep: Callable[[float, float], bool] | None = None
    landmark: bool = True  # the first building is the 200 m tower
    with_bridge: bool = True

    def keeps(self, x: float, y: float) -> bool:
        return self.keep is None or bool(self.keep(x, y))


def plan_district(size_m: float) -> _Plan:
    """Street grid (one avenue at x = 0), blocks between streets, a park block and the bridge footprint."""
    half = size_m / 2
    plan = _Plan(half)
    n = int(np.floor(half / BLOCK_PITCH))
    lines = [k * BLOCK_PITCH for k in range(-n, n + 1)]
    plan.streets_x = [(c, AVENUE_WIDTH if c == 0 else STREET_WIDTH) for c in lines]
    plan.streets_y = [(c, STREET_WIDTH) for c in lines]
    edges_x = [-half] + lines + [half]
    edges_y = [-half] + lines + [half]
    width_x = dict(plan.streets_x)
    width_y = dict(plan.streets_y)
    for i in range(len(edges_x) - 1):
        for j in range(len(edges_y) - 1):
            x0 = edges_x[i] + width_x.get(edges_x[i], 0) / 2
            x1 = edges_x[i + 1] - width_x.get(edges_x[i + 1], 0) / 2
            y0 = edges_y[j] + width_y.get(edges_y[j], 0) / 2
            y1 = edges_y[j + 1] - width_y.get(edges_y[j + 1], 0) / 2
            if x1 - x0 >= 20 and y1 - y0 >= 20:
                plan.blocks.append((x0, y0, x1, y1))
    # park: the block just north-east of the centre; bridge: across the avenue, mid-block south of centre
    plan.park = min(plan.blocks, key=lambda b: abs(b[0] - AVENUE_WIDTH / 2) + abs(b[1] - STREET_WIDTH / 2))
    yb = -BLOCK_PITCH / 2 if half >= BLOCK_PITCH else 0.0
    plan.bridge = (-AVENUE_WIDTH / 2 - 8.0, yb - 2.0, AVENUE_WIDTH / 2 + 8.0, yb + 2.0)
    return plan


def _overlaps(a: tuple[float, ...], b: tuple[float, ...], margin: float = 0.0) -> bool:
    return a[0] - margin < b[2] and b[0] - margin < a[2] and a[1] - margin < b[3] and b[1] - margin < a[3]


# ----------------------------------------------------------------------------------------------- features

def _building_members(plan: _Plan, rng: np.random.Generator, w: _Writer) -> list[str]:
    members: list[str] = []
    tallest_done = False
    n = 0
    blocks = sorted(plan.blocks, key=lambda b: (abs(b[0]) + abs(b[1]), b[0], b[1]))
    for block in blocks:
        if block == plan.park or not plan.keeps((block[0] + block[2]) / 2, (block[1] + block[3]) / 2):
            continue
        x0, y0, x1, y1 = block
        nx = int(rng.integers(2, 4))
        ny = int(rng.integers(2, 4))
        xs = np.linspace(x0, x1, nx + 1)
        ys = np.linspace(y0, y1, ny + 1)
        for i in range(nx):
            for j in range(ny):
                sb = float(rng.uniform(2.0, 4.0))
                lot = (xs[i] + sb, ys[j] + sb, xs[i + 1] - sb, ys[j + 1] - sb)
                if plan.bridge and _overlaps(lot, plan.bridge, 3.0):
                    continue
                n += 1
                bid = f"bldg_{n:05d}"
                r = float(rng.random())
                z0 = float(np.min(ground_height(np.array([lot[0], lot[2]]), np.array([lot[1], lot[3]]))))
                if not tallest_done and plan.landmark:
                    tallest_done = True
                    members.append(_tower(bid, n, lot, z0, MAX_HEIGHT, w))
                elif r < 0.06:
                    members.append(_tower(bid, n, lot, z0, float(rng.uniform(70.0, 170.0)), w))
                elif r < 0.20:
                    members.append(_gable_house(bid, n, lot, z0, float(rng.uniform(7.0, 12.0)), w))
                elif r < 0.30 and min(lot[2] - lot[0], lot[3] - lot[1]) >= 18:
                    members.append(_courtyard(bid, n, lot, z0, float(rng.uniform(12.0, 30.0)), w))
                else:
                    h = float(np.clip(rng.lognormal(np.log(14.0), 0.5), 6.0, 55.0))
                    members.append(_lod1_building(bid, n, lot, z0, h, w))
    return members


def _header(bid: str, n: int, height: float, storeys: int) -> str:
    return (f'<bldg:Building gml:id="{bid}">\n{_uro_id("building", n)}\n'
            f'<bldg:measuredHeight uom="m">{height:.1f}</bldg:measuredHeight>\n'
            f"<bldg:storeysAboveGround>{storeys}</bldg:storeysAboveGround>")


def _lod1_building(bid: str, n: int, lot: tuple, z0: float, h: float, w: _Writer) -> str:
    x0, y0, x1, y1 = lot
    foot = [np.array([[x0, y0, z0], [x1, y0, z0], [x1, y1, z0], [x0, y1, z0]])]
    faces = [[f] for f in box_rings(x0, y0, x1, y1, z0, z0 + h)]
    return (f"{_header(bid, n, h, max(1, int(h // 3.5)))}\n"
            f"<bldg:lod0FootPrint>{w.multi_surface([foot])}</bldg:lod0FootPrint>\n"
            f"<bldg:lod1Solid>{w.solid(faces)}</bldg:lod1Solid>\n</bldg:Building>")


def _courtyard(bid: str, n: int, lot: tuple, z0: float, h: float, w: _Writer) -> str:
    x0, y0, x1, y1 = lot
    d = min(x1 - x0, y1 - y0) / 3
    outer = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
    inner = np.array([[x0 + d, y0 + d], [x1 - d, y0 + d], [x1 - d, y1 - d], [x0 + d, y1 - d]])
    polys = courtyard_polygons(outer, inner, z0, z0 + h)
    return (f"{_header(bid, n, h, max(1, int(h // 3.5)))}\n"
            f"<bldg:lod1Solid>{w.solid(polys)}</bldg:lod1Solid>\n</bldg:Building>")


def _gable_house(bid: str, n: int, lot: tuple, z0: float, h: float, w: _Writer) -> str:
    x0, y0, x1, y1 = lot
    eave = z0 + h * 0.7
    ridge = z0 + h
    faces = gable_faces(x0, y0, x1, y1, z0, eave, ridge)
    refs = []
    bounded = []
    for k, (kind, ring) in enumerate(faces):
        pid = f"{bid}_poly{k}"
        refs.append(f'<gml:surfaceMember xlink:href="#{pid}"/>')
        bounded.append(f'<bldg:boundedBy><bldg:{kind} gml:id="{bid}_surf{k}"><bldg:lod2MultiSurface><gml:MultiSurface>'
                       f"<gml:surfaceMember>{w.polygon([ring], pid)}</gml:surfaceMember>"
                       f"</gml:MultiSurface></bldg:lod2MultiSurface></bldg:{kind}></bldg:boundedBy>")
    lod1 = [[f] for f in box_rings(x0, y0, x1, y1, z0, z0 + h * 0.85)]
    return (f"{_header(bid, n, h, 2)}\n<bldg:lod1Solid>{w.solid(lod1)}</bldg:lod1Solid>\n"
            f'<bldg:lod2Solid><gml:Solid gml:id="{bid}_solid"><gml:exterior><gml:CompositeSurface>\n'
            + "\n".join(refs) + "\n</gml:CompositeSurface></gml:exterior></gml:Solid></bldg:lod2Solid>\n"
            + "\n".join(bounded) + "\n</bldg:Building>")


def _tower(bid: str, n: int, lot: tuple, z0: float, h: float, w: _Writer) -> str:
    """A tower on a podium: the Building has no geometry of its own, two BuildingParts do."""
    x0, y0, x1, y1 = lot
    podium_h = 15.0
    inset = min(x1 - x0, y1 - y0) * 0.2
    parts = [
        (f"{bid}_podium", box_rings(x0, y0, x1, y1, z0, z0 + podium_h), podium_h),
        (f"{bid}_tower", box_rings(x0 + inset, y0 + inset, x1 - inset, y1 - inset, z0 + podium_h, z0 + h), h),
    ]
    xml = [f'<bldg:Building gml:id="{bid}">\n{_uro_id("building", n)}\n'
           f"<bldg:storeysAboveGround>{int(h // 4)}</bldg:storeysAboveGround>"]
    for pid, faces, ph in parts:
        xml.append(f'<bldg:consistsOfBuildingPart><bldg:BuildingPart gml:id="{pid}">\n'
                   f'<bldg:measuredHeight uom="m">{ph:.1f}</bldg:measuredHeight>\n'
                   f"<bldg:lod1Solid>{w.solid([[f] for f in faces])}</bldg:lod1Solid>\n"
                   "</bldg:BuildingPart></bldg:consistsOfBuildingPart>")
    xml.append("</bldg:Building>")
    return "\n".join(xml)


def _road_members(plan: _Plan, w: _Writer) -> list[str]:
    members = []
    half = plan.half
    seg = np.linspace(-half, half, max(2, int(round(2 * half / 50.0))) + 1)
    k = 0
    for axis, streets in (("x", plan.streets_x), ("y", plan.streets_y)):
        for c, width in streets:
            polys = []
            for a, b in zip(seg[:-1], seg[1:]):
                if not (plan.keeps(c, (a + b) / 2) if axis == "x" else plan.keeps((a + b) / 2, c)):
                    continue
                if axis == "x":
                    xy = np.array([[c - width / 2, a], [c + width / 2, a], [c + width / 2, b], [c - width / 2, b]])
                else:
                    xy = np.array([[a, c - width / 2], [b, c - width / 2], [b, c + width / 2], [a, c + width / 2]])
                polys.append([np.column_stack([xy, ground_height(xy[:, 0], xy[:, 1])])])
            k += 1
            if not polys:
                continue
            members.append(f'<tran:Road gml:id="tran_{k:04d}">\n<tran:function>1</tran:function>\n'
                           f"<tran:lod1MultiSurface>{w.multi_surface(polys)}</tran:lod1MultiSurface>\n</tran:Road>")
    return members


def _bridge_members(plan: _Plan, w: _Writer) -> list[str]:
    if not plan.with_bridge:
        return []
    x0, y0, x1, y1 = plan.bridge
    g = float(ground_height(0.0, (y0 + y1) / 2))
    faces = [[f] for f in box_rings(x0, y0, x1, y1, g + 6.0, g + 7.2)]
    return [f'<brid:Bridge gml:id="brid_0001">\n<brid:function>歩道橋</brid:function>\n'
            f"<brid:lod1Solid>{w.solid(faces)}</brid:lod1Solid>\n</brid:Bridge>"]


def _tree(tid: str, x: float, y: float, rng: np.random.Generator, w: _Writer) -> str:
    g = float(ground_height(x, y))
    r = float(rng.uniform(1.5, 3.0))
    top = float(rng.uniform(6.0, 11.0))
    ang = np.arange(6) * np.pi / 3
    crown = np.column_stack([x + r * np.cos(ang), y + r * np.sin(ang)])
    trunk = np.column_stack([x + 0.3 * np.cos(ang), y + 0.3 * np.sin(ang)])
    solids = [w.solid([[f] for f in prism_rings(trunk, g, g + 2.5)]),
              w.solid([[f] for f in prism_rings(crown, g + 2.5, g + top)])]
    members = "".join(f"<gml:solidMember>{s}</gml:solidMember>" for s in solids)
    return (f'<veg:SolitaryVegetationObject gml:id="{tid}">\n<veg:height uom="m">{top:.1f}</veg:height>\n'
            f"<veg:lod1Geometry><gml:MultiSolid>{members}</gml:MultiSolid></veg:lod1Geometry>\n"
            "</veg:SolitaryVegetationObject>")


def _vegetation_members(plan: _Plan, rng: np.random.Generator, w: _Writer) -> list[str]:
    members = []
    k = 0
    half = plan.half
    for c, width in plan.streets_x + plan.streets_y:
        horizontal = (c, width) in plan.streets_y and (c, width) not in plan.streets_x[:0]
        for t in np.arange(-half + 9.0, half - 9.0, 18.0):
            if min(abs(t - s) for s, _ in plan.streets_y) < 12.0 and not horizontal:
                continue
            if min(abs(t - s) for s, _ in plan.streets_x) < 18.0 and horizontal:
                continue
            off = c + width / 2 - 1.5
            x, y = (t, off) if horizontal else (off, t)
            if plan.bridge and _overlaps((x - 3, y - 3, x + 3, y + 3), plan.bridge):
                continue
            if not plan.keeps(x, y):
                continue
            k += 1
            members.append(_tree(f"veg_{k:05d}", x, y, rng, w))
        plan.streets_y = plan.streets_y  # keep order explicit
    if plan.park:
        x0, y0, x1, y1 = plan.park
        for _ in range(12):
            x, y = float(rng.uniform(x0 + 5, x1 - 5)), float(rng.uniform(y0 + 5, y1 - 5))
            if abs(x - (x0 + x1) / 2) < 12 and abs(y - (y0 + y1) / 2) < 12:
                continue  # the pond
            k += 1
            members.append(_tree(f"veg_{k:05d}", x, y, rng, w))
        g = float(np.min(ground_height(np.array([x0, x1]), np.array([y0, y1]))))
        hedge = [[f] for f in box_rings(x0 + 1, y0 + 1, x1 - 1, y0 + 2.5, g, g + 1.2)]
        members.append(f'<veg:PlantCover gml:id="veg_cover_0001">\n<veg:averageHeight uom="m">1.2</veg:averageHeight>\n'
                       f"<veg:lod1MultiSolid><gml:MultiSolid><gml:solidMember>{w.solid(hedge)}</gml:solidMember>"
                       "</gml:MultiSolid></veg:lod1MultiSolid>\n</veg:PlantCover>")
    return members


def _water_members(plan: _Plan, w: _Writer) -> list[str]:
    if not plan.park:
        return []
    x0, y0, x1, y1 = plan.park
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    ang = np.arange(12) * np.pi / 6
    xy = np.column_stack([cx + 10 * np.cos(ang), cy + 7 * np.sin(ang)])
    z = float(ground_height(cx, cy)) - 0.5
    ring = np.column_stack([xy, np.full(len(xy), z)])
    return [f'<wtr:WaterBody gml:id="wtr_0001">\n<wtr:class>池</wtr:class>\n'
            f"<wtr:lod1MultiSurface>{w.multi_surface([[ring]])}</wtr:lod1MultiSurface>\n</wtr:WaterBody>"]


def _dem_members(plan: _Plan, w: _Writer, keep: Callable[[float, float], bool] | None = None) -> list[str]:
    """The terrain TIN over the district + 50 m; keep(x, y) of a triangle's centroid selects triangles."""
    half = plan.half + 50.0
    n = int(np.ceil(2 * half / 25.0))
    g = np.linspace(-half, half, n + 1)
    patches = []
    for i in range(n):
        for j in range(n):
            a = np.array([g[i], g[j]])
            b = np.array([g[i + 1], g[j]])
            c = np.array([g[i + 1], g[j + 1]])
            d = np.array([g[i], g[j + 1]])
            for tri in ((a, b, c), (a, c, d)):
                xy = np.array(tri)
                if keep is not None and not keep(*xy.mean(axis=0)):
                    continue
                pts = np.column_stack([xy, ground_height(xy[:, 0], xy[:, 1])])
                patches.append(f"<gml:Triangle><gml:exterior><gml:LinearRing><gml:posList>{w.pos_list(pts)}"
                               "</gml:posList></gml:LinearRing></gml:exterior></gml:Triangle>")
    if not patches:
        return []
    tin = "\n".join(patches)
    return [f'<dem:ReliefFeature gml:id="dem_0001">\n<dem:lod>1</dem:lod>\n<dem:reliefComponent>'
            f'<dem:TINRelief gml:id="dem_tin_0001"><dem:lod>1</dem:lod><dem:tin><gml:TriangulatedSurface>'
            f"<gml:trianglePatches>\n{tin}\n</gml:trianglePatches></gml:TriangulatedSurface></dem:tin>"
            "</dem:TINRelief></dem:reliefComponent>\n</dem:ReliefFeature>"]


# ----------------------------------------------------------------------------------------------- public

def write_sample_district(out_dir: Path, *, seed: int = 0, size_m: float = 600.0) -> list[Path]:
    """Write the sample district's CityGML files under out_dir/udx/<type>/; returns the paths written."""
    if not (100.0 <= size_m <= 5000.0):
        raise ValueError(f"size_m={size_m}: the sample district must be 100..5000 m wide")
    out_dir = Path(out_dir)
    rng = np.random.default_rng(seed)
    plan = plan_district(size_m)
    mesh8 = mesh_code(CENTER_LAT, CENTER_LON, 3)
    mesh6 = mesh_code(CENTER_LAT, CENTER_LON, 2)
    jobs = [
        ("bldg", mesh8, lambda w: _building_members(plan, rng, w)),
        ("tran", mesh8, lambda w: _road_members(plan, w)),
        ("brid", mesh8, lambda w: _bridge_members(plan, w)),
        ("veg", mesh8, lambda w: _vegetation_members(plan, rng, w)),
        ("wtr", mesh8, lambda w: _water_members(plan, w)),
        ("dem", mesh6, lambda w: _dem_members(plan, w)),
    ]
    written = []
    for ftype, code, make in jobs:
        w = _Writer()
        members = make(w)
        path = out_dir / "udx" / ftype / f"{code}_{ftype}_6697_op.gml"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".gml.tmp")
        tmp.write_text(w.document(members), encoding="utf-8", newline="\n")
        tmp.replace(path)
        written.append(path)
    return written


def load_sample_city(*, seed: int = 0, size_m: float = 600.0, cache_dir: Path | None = None) -> CityMesh:
    """The sample district as a CityMesh: written as CityGML (to cache_dir or a temporary folder), read by load_city."""
    from .loader import load_city

    if cache_dir is not None:
        folder = Path(cache_dir) / f"sample_district_v{GENERATOR_VERSION}_seed{seed}_{size_m:g}m"
        marker = folder / ".complete"
        if not marker.exists():
            write_sample_district(folder, seed=seed, size_m=size_m)
            marker.write_text("ok\n")
        return load_city(folder / "udx", progress=False)
    with tempfile.TemporaryDirectory(prefix="occworld_sample_") as tmp:
        write_sample_district(Path(tmp), seed=seed, size_m=size_m)
        return load_city(Path(tmp) / "udx", progress=False)


# ----------------------------------------------------------------------------------------------- a whole city

MAX_CITY_KM = 32


def city_tiles(size_km: int) -> list[str]:
    """The size_km x size_km level-3 mesh codes of the sample city, around the district's centre (sorted)."""
    from .meshcode import neighbour

    centre = mesh_code(CENTER_LAT, CENTER_LON, 3)
    sw = neighbour(centre, -(size_km // 2), -(size_km // 2))
    return sorted(neighbour(sw, r, c) for r in range(size_km) for c in range(size_km))


def _write_doc(out_dir: Path, ftype: str, code: str, w: _Writer, members: list[str]) -> Path | None:
    if not members:
        return None
    path = out_dir / "udx" / ftype / f"{code}_{ftype}_6697_op.gml"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".gml.tmp")
    tmp.write_text(w.document(members), encoding="utf-8", newline="\n")
    tmp.replace(path)
    return path


def write_sample_city(out_dir: Path, *, size_km: int, seed: int = 0, progress: bool = True,
                      tiles: list[str] | None = None) -> list[Path]:
    """The sample district's street grid over size_km x size_km level-3 mesh squares (about 1.14 x 0.93 km
    each at this latitude), written as PLATEAU names them: udx/<type>/<mesh8>_<type>_6697_op.gml per square for
    bldg, tran, brid, veg, wtr and udx/dem/<mesh6>_dem_6697_op.gml per level-2 square.

    Every feature goes to the square holding its centre (a block's, a street segment's, a tree's, a terrain
    triangle's centroid). Buildings of square k draw from PCG64 seeded (seed, k); each square has its own
    towers, the square at the centre the 200 m landmark. Same seed and size, byte-identical files.

    `tiles` (a subset of `city_tiles(size_km)`): write only these squares, and the terrain only under them: the
    same features those squares have in the whole city, and nothing of the others (an area split: no geometry of
    another split's squares is in the files).
    """
    from tqdm import tqdm

    from .meshcode import mesh_bounds, mesh_codes

    if not (isinstance(size_km, int) and 1 <= size_km <= MAX_CITY_KM):
        raise ValueError(f"--size-km must be a whole number of 1 km mesh squares, 1..{MAX_CITY_KM} (got {size_km})")
    out_dir = Path(out_dir)
    codes = city_tiles(size_km)
    chosen = set(codes) if tiles is None else {str(t) for t in tiles}
    if not chosen <= set(codes) or not chosen:
        raise ValueError(f"tiles {sorted(chosen - set(codes))[:4] or '(none)'} are not squares of the {size_km} x "
                         f"{size_km} km sample city (its squares: city_tiles({size_km}))")
    b = np.array([mesh_bounds(c) for c in codes])
    lat0 = float(np.round((b[:, 0].min() + b[:, 2].max()) / 2, 7))
    lon0 = float(np.round((b[:, 1].min() + b[:, 3].max()) / 2, 7))
    lat_c = np.array([b[:, 0].min(), b[:, 0].min(), b[:, 2].max(), b[:, 2].max()])
    lon_c = np.array([b[:, 1].min(), b[:, 3].max(), b[:, 1].min(), b[:, 3].max()])
    from .crs import lonlat_to_local

    cx, cy = lonlat_to_local(lon_c, lat_c, lat0, lon0)
    size_m = float(2 * max(np.abs(cx).max(), np.abs(cy).max()))
    plan = plan_district(size_m)
    centre_code = mesh_code(CENTER_LAT, CENTER_LON, 3)

    def code_at(x: float, y: float) -> int:
        lon, lat = local_to_lonlat(np.array([x]), np.array([y]), lat0, lon0)
        return int(mesh_codes(lat, lon)[0])

    bridge_code = code_at((plan.bridge[0] + plan.bridge[2]) / 2, (plan.bridge[1] + plan.bridge[3]) / 2)
    park_code = code_at((plan.park[0] + plan.park[2]) / 2, (plan.park[1] + plan.park[3]) / 2)
    written: list[Path] = []
    for k, code in enumerate(tqdm(codes, desc="sample city", unit="tile", disable=not progress, leave=False)):
        if code not in chosen:
            continue  # k still counts it: every square draws from the stream it has in the whole city
        icode = int(code)
        sub = replace(plan, keep=lambda x, y, icode=icode: code_at(x, y) == icode, landmark=code == centre_code,
                      with_bridge=bridge_code == icode, park=plan.park if park_code == icode else None)
        rng = np.random.default_rng([seed, k])
        for ftype, make in (("bldg", lambda w: _building_members(sub, rng, w)), ("tran", lambda w: _road_members(sub, w)),
                            ("brid", lambda w: _bridge_members(sub, w)),
                            ("veg", lambda w: _vegetation_members(sub, rng, w)), ("wtr", lambda w: _water_members(sub, w))):
            w = _Writer(lat0, lon0)
            path = _write_doc(out_dir, ftype, code, w, make(w))
            if path is not None:
                written.append(path)
    for code6 in sorted({c[:6] for c in chosen}):
        w = _Writer(lat0, lon0)
        inside = {int(c) for c in chosen if c.startswith(code6)}
        members = _dem_members(plan, w, keep=lambda x, y, inside=inside: code_at(x, y) in inside)
        path = _write_doc(out_dir, "dem", code6, w, members)
        if path is not None:
            written.append(path)
    return written


# ----------------------------------------------------------------------------------------------- a railway

def write_sample_railway(out_dir: Path, *, east_m: float = 1500.0, north_m: float = 0.0, length_m: float = 300.0,
                         width_m: float = 8.0) -> Path:
    """One tran:Railway (a straight `length_m` x `width_m` m track bed, lod1MultiSurface, on the district's
    ground, running east-west) centred `east_m`, `north_m` metres from the sample district's centre, written as
    PLATEAU names it: out_dir/udx/rwy/<mesh8>_rwy_6697_op.gml (the mesh square holding its centre). The
    district has no railway; this gives tests and demos a railway tile of its own (by default 1.5 km east,
    another mesh square). Returns the path written."""
    from .crs import local_to_lonlat as _to_lonlat

    w = _Writer()
    x0, x1 = east_m - length_m / 2, east_m + length_m / 2
    seg = np.linspace(x0, x1, max(2, int(np.ceil(length_m / 50.0))) + 1)
    polys = []
    for a, b in zip(seg[:-1], seg[1:]):
        xy = np.array([[a, north_m - width_m / 2], [b, north_m - width_m / 2], [b, north_m + width_m / 2],
                       [a, north_m + width_m / 2]])
        polys.append([np.column_stack([xy, ground_height(xy[:, 0], xy[:, 1])])])
    member = (f'<tran:Railway gml:id="rwy_0001">\n<tran:function>普通鉄道</tran:function>\n'
              f"<tran:lod1MultiSurface>{w.multi_surface(polys)}</tran:lod1MultiSurface>\n</tran:Railway>")
    lon, lat = _to_lonlat(np.array([east_m]), np.array([north_m]), CENTER_LAT, CENTER_LON)
    code = mesh_code(float(lat[0]), float(lon[0]), 3)
    path = _write_doc(Path(out_dir), "rwy", code, w, [member])
    assert path is not None
    return path
