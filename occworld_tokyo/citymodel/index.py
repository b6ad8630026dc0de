"""CityIndex: a whole input (a municipality zip, udx/ folders, files scattered across Japan) as cached tiles
grouped into places, and the geometry of any region of a place as a CityMesh.

`build_index(inputs)` discovers the sources (sources.py), makes sure each has a cache entry (cache.py; parsed in
parallel over `workers` processes with a progress bar, skipped when cached), and groups the level-3 mesh tiles
into *places*: tiles whose data bounding boxes lie less than `PLACE_GAP_M` apart belong to one place (single
linkage). Each place has its own metric frame: transverse Mercator centred on the centre of the latitude /
longitude bounding box of its data (x east, y north, z up, metres; `CityMesh.origin`), as load_city does for
one place. Instance ids are global and stable: sources in discovery order, tiles in code order, objects in
tile order, numbered from 1.

`CityIndex.load_region(place, bounds)` reads only the tiles whose data can reach `bounds` (place frame, metres)
and keeps every object whose bounding box meets it, whole.
"""

from __future__ import annotations

import sys
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from tqdm import tqdm

from . import crs as crs_mod
from .cache import Entry, default_cache_dir, ensure_entry
from .errors import CityModelError, CityModelWarning, MalformedXMLError
from .mesh import CityMesh, GeoOrigin
from .meshcode import mesh_bounds
from .problems import problem_summary
from .sources import Source, discover

PLACE_GAP_M = 10_000.0  # tiles closer than this (bbox to bbox) are one place
_M_PER_DEG_LAT = 111_000.0


@dataclass(frozen=True)
class TileRef:
    """One level-3 mesh tile of one source's cache entry."""

    entry: Entry
    code: str
    first_instance: int  # instance id of the tile's object 0
    objects: int
    triangles: int
    buildings: int
    bbox: tuple[float, float, float, float]  # lat_min, lon_min, lat_max, lon_max (degrees) of its triangles
    kinds: tuple[tuple[int, int], ...] = ()  # (storage label id, objects) of the objects kept, by label id
    drop: tuple[int, ...] = ()  # tile-local indices of objects an earlier file already has (duplicate_ids.py)

    @property
    def display(self) -> str:
        return str(self.entry.manifest["display"])


@dataclass
class Place:
    """Tiles near each other, with their common local frame."""

    id: int
    tiles: list[TileRef]
    origin: GeoOrigin
    bbox: tuple[float, float, float, float]  # lat_min, lon_min, lat_max, lon_max of the data
    bounds: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)  # xmin, ymin, xmax, ymax in its frame

    @property
    def codes(self) -> list[str]:
        return sorted({t.code for t in self.tiles})

    def to_dict(self) -> dict:
        return {"id": self.id, "origin": self.origin.to_dict(), "mesh_codes": self.codes,
                "bbox_latlon": [round(v, 7) for v in self.bbox], "bounds_m": [round(v, 3) for v in self.bounds]}


@dataclass
class CityIndex:
    cache_dir: Path
    places: list[Place]
    source_files: list[str]
    skipped: dict[str, int] = field(default_factory=dict)
    parsed_now: int = 0  # sources parsed by this build (the others came from the cache)
    notes: list[str] = field(default_factory=list)  # duplicates dropped, geometry problems per file (one line each)

    @property
    def tiles(self) -> list[TileRef]:
        return [t for p in self.places for t in p.tiles]

    def summary(self) -> str:
        n_tiles = len({(p.id, t.code) for p in self.places for t in p.tiles})
        return "\n".join([f"{len(self.source_files)} source file(s) ({self.parsed_now} parsed now, the rest from the "
                          f"cache {self.cache_dir}), {n_tiles} mesh tile(s) in {len(self.places)} place(s)"]
                         + self.notes)

    def load_region(self, place: Place, bounds: tuple[float, float, float, float] | None = None) -> CityMesh:
        """Every object of `place` whose bounding box meets `bounds` (xmin, ymin, xmax, ymax, place frame metres;
        None = the whole place), whole, in the place frame."""
        lat0, lon0 = place.origin.lat, place.origin.lon
        parts: list[CityMesh] = []
        for t in place.tiles:
            if bounds is not None and not _tile_may_meet(t, bounds, lat0, lon0):
                continue
            a = t.entry.tile_arrays(t.code)
            tris = _to_place(a["triangles"], t.entry.manifest["origin"], lat0, lon0)
            obj = a["tri_object"].astype(np.int64)
            n = len(a["label"])
            keep = np.ones(n, dtype=bool)
            keep[list(t.drop)] = False  # objects an earlier input file already has
            if bounds is not None:
                lo = np.full((n, 2), np.inf)
                hi = np.full((n, 2), -np.inf)
                np.minimum.at(lo, obj, tris[:, :, :2].min(axis=1))
                np.maximum.at(hi, obj, tris[:, :, :2].max(axis=1))
                keep &= ((lo[:, 0] <= bounds[2]) & (hi[:, 0] >= bounds[0]) & (lo[:, 1] <= bounds[3])
                         & (hi[:, 1] >= bounds[1]))
                if not keep.any():
                    continue
            m = CityMesh(triangles=tris, tri_object=obj, object_label=a["label"],
                         object_instance=np.arange(t.first_instance, t.first_instance + n, dtype=np.int32),
                         object_fill=a["fill"], object_gml_id=[str(g) for g in a["gml_id"]],
                         source_files=[t.display])
            parts.append(m if keep.all() else m.select(keep))
        if not parts:
            raise CityModelError(f"no city object of place {place.id} (mesh {', '.join(place.codes[:4])}...) lies in "
                                 f"the region {tuple(round(b, 1) for b in bounds or ())}. Fix: choose a region "
                                 "inside the data (see --region)")
        mesh = CityMesh.concatenate(parts)
        mesh.origin = place.origin
        mesh.source_files = sorted(set(mesh.source_files))
        mesh.skipped = dict(self.skipped)
        return mesh

    def place_of(self, code: str) -> Place | None:
        for p in self.places:
            if code in p.codes:
                return p
        return None


def _to_place(tris: np.ndarray, file_origin: list[float], lat0: float, lon0: float) -> np.ndarray:
    """File-frame float32 triangles (T, 3, 3) -> place frame float32 (same heights)."""
    flat = tris.reshape(-1, 3).astype(np.float64)
    fl0, fo0 = float(file_origin[0]), float(file_origin[1])
    if (fl0, fo0) != (lat0, lon0):
        lon, lat = crs_mod.local_to_lonlat(flat[:, 0], flat[:, 1], fl0, fo0)
        flat[:, 0], flat[:, 1] = crs_mod.lonlat_to_local(lon, lat, lat0, lon0)
    return flat.astype(np.float32).reshape(-1, 3, 3)


def _deg_box_to_local(bbox: tuple[float, float, float, float], lat0: float, lon0: float
                      ) -> tuple[float, float, float, float]:
    lat = np.array([bbox[0], bbox[0], bbox[2], bbox[2], (bbox[0] + bbox[2]) / 2, (bbox[0] + bbox[2]) / 2])
    lon = np.array([bbox[1], bbox[3], bbox[1], bbox[3], bbox[1], bbox[3]])
    x, y = crs_mod.lonlat_to_local(lon, lat, lat0, lon0)
    return float(x.min()), float(y.min()), float(x.max()), float(y.max())


def _tile_may_meet(t: TileRef, bounds: tuple[float, float, float, float], lat0: float, lon0: float) -> bool:
    x0, y0, x1, y1 = _deg_box_to_local(t.bbox, lat0, lon0)
    pad = 1.0  # m: projection of a box's corners vs its edges
    return x0 - pad <= bounds[2] and x1 + pad >= bounds[0] and y0 - pad <= bounds[3] and y1 + pad >= bounds[1]


def _gap_m(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise approximate gap (m) between lat/lon boxes a (N, 4) and b (M, 4); 0 where they overlap."""
    coslat = np.cos(np.radians((a[:, None, 0] + b[None, :, 2]) / 2))
    dlat = np.maximum(0, np.maximum(a[:, None, 0] - b[None, :, 2], b[None, :, 0] - a[:, None, 2])) * _M_PER_DEG_LAT
    dlon = np.maximum(0, np.maximum(a[:, None, 1] - b[None, :, 3], b[None, :, 1] - a[:, None, 3])) * _M_PER_DEG_LAT
    return np.hypot(dlat, dlon * coslat)


def group_places(tiles: list[TileRef], gap_m: float = PLACE_GAP_M) -> list[Place]:
    """Single-linkage groups of tiles whose data boxes lie within gap_m of each other, each with its frame."""
    codes = sorted({t.code for t in tiles})
    boxes = np.array([[min(t.bbox[0] for t in tiles if t.code == c), min(t.bbox[1] for t in tiles if t.code == c),
                       max(t.bbox[2] for t in tiles if t.code == c), max(t.bbox[3] for t in tiles if t.code == c)]
                      for c in codes])
    near = _gap_m(boxes, boxes) < gap_m
    n, label = connected_components(coo_matrix(near), directed=False)
    places = []
    for k in range(n):
        members = {codes[i] for i in np.nonzero(label == k)[0]}
        b = boxes[label == k]
        bbox = (float(b[:, 0].min()), float(b[:, 1].min()), float(b[:, 2].max()), float(b[:, 3].max()))
        lat0 = float(np.round((bbox[0] + bbox[2]) / 2, 7))
        lon0 = float(np.round((bbox[1] + bbox[3]) / 2, 7))
        ptiles = [t for t in tiles if t.code in members]
        crs_names = sorted({str(t.entry.manifest["crs"]) for t in ptiles})
        origin = GeoOrigin(lat=lat0, lon=lon0, height=0.0, source_crs="+".join(crs_names),
                           projected_crs=crs_mod.local_proj_string(lat0, lon0))
        p = Place(id=0, tiles=ptiles, origin=origin, bbox=bbox)
        p.bounds = _deg_box_to_local(bbox, lat0, lon0)
        places.append(p)
    places.sort(key=lambda p: p.codes[0])
    for i, p in enumerate(places):
        p.id = i
    return places


def _parse_one(source: Source, cache_dir: Path) -> tuple[Entry, bool]:
    """Worker task: the cache entry of one source (everything it needs comes with the call)."""
    return ensure_entry(source, cache_dir)


def _estimate_cache_bytes(sources: list[Source]) -> int:
    """Upper estimate of the cache size: measured 0.2-0.9 x the CityGML bytes (docs/benchmarks.md), so 1 x."""
    return int(sum(s.size() for s in sources))


def check_disk_space(folder: Path, need: int, what: str) -> None:
    """Raise OSError naming the folder when it lacks `need` bytes (+10 %) of free space."""
    import shutil

    probe = Path(folder)
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if need * 1.1 > free:
        raise OSError(f"{what} needs about {need / 1e9:.2f} GB in {folder} but only {free / 1e9:.2f} GB is free; "
                      "nothing was written. Fix: free disk space or choose another folder")


def build_index(inputs, *, cache_dir: str | Path | None = None, workers: int = 1, strict: bool = False,
                progress: bool = True) -> CityIndex:
    """Index (and cache) the inputs; see the module docstring. Malformed XML files are skipped with a
    CityModelWarning unless strict (then MalformedXMLError); other CityModelErrors always raise."""
    disc = discover(inputs)
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    skipped: dict[str, int] = dict(disc.skipped)
    check_disk_space(root, _estimate_cache_bytes(disc.sources), "the city cache")
    entries: dict[int, Entry] = {}
    parsed_now = 0
    bar = tqdm(total=len(disc.sources), desc="city index", unit="file", disable=not progress, file=sys.stderr,
               leave=False)
    problems: list[str] = []

    def done(i: int, result: tuple[Entry, bool] | BaseException) -> None:
        nonlocal parsed_now
        if isinstance(result, MalformedXMLError):
            if strict:
                raise result
            warnings.warn(f"skipped: {result}", CityModelWarning, stacklevel=3)
            problems.append(str(result))
            skipped["malformed_xml"] = skipped.get("malformed_xml", 0) + 1
        elif isinstance(result, BaseException):
            raise result
        else:
            entries[i] = result[0]
            parsed_now += int(result[1])
        bar.update(1)

    try:
        if workers <= 1 or len(disc.sources) <= 1:
            for i, s in enumerate(disc.sources):
                try:
                    r: tuple[Entry, bool] | BaseException = _parse_one(s, root)
                except MalformedXMLError as exc:
                    r = exc
                done(i, r)
        else:
            import multiprocessing as mp

            import os

            from occworld_tokyo.locks import die_with_parent

            with ProcessPoolExecutor(max_workers=min(workers, len(disc.sources)), mp_context=mp.get_context("fork"),
                                     initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
                futures = {pool.submit(_parse_one, s, root): i for i, s in enumerate(disc.sources)}
                for f in as_completed(futures):
                    exc = f.exception()
                    done(futures[f], exc if exc is not None else f.result())
    finally:
        bar.close()
    tiles: list[TileRef] = []
    next_instance = 1
    ordered = [entries[i] for i in sorted(entries)]
    # each source's own name (two copies of one file share one cache entry and its manifest's name)
    drops, duplicates_note = _duplicate_objects(ordered, [disc.sources[i].display for i in sorted(entries)])
    notes: list[str] = []
    for k_entry, e in enumerate(ordered):
        for k, v in e.manifest["skipped"].items():
            skipped[k] = skipped.get(k, 0) + v
        note = problem_summary(str(e.manifest["display"]), e.manifest["skipped"], e.manifest.get("flagged"))
        if note:
            notes.append(note)
        for code in sorted(e.manifest["tiles"]):
            rec = e.manifest["tiles"][code]
            tiles.append(_tile_ref(e, code, next_instance, drops.get((k_entry, code), ())))
            next_instance += rec["objects"]
    if drops:
        skipped["duplicate_objects"] = skipped.get("duplicate_objects", 0) + sum(len(d) for d in drops.values())
        notes.insert(0, duplicates_note)
    if not tiles:
        detail = "; ".join(problems) if problems else f"skipped: {dict(sorted(skipped.items()))}"
        raise CityModelError(
            f"no city objects could be read from {', '.join(s.display for s in disc.sources)} ({detail}). "
            "Fix: check that the files are PLATEAU CityGML of a supported type (bldg, dem, tran, brid, rwy, veg, "
            "frn, wtr, trk) or *_<type>_6677.obj exports.")
    return CityIndex(cache_dir=root, places=group_places(tiles), skipped=skipped, parsed_now=parsed_now,
                     source_files=[str(entries[i].manifest["display"]) for i in sorted(entries)], notes=notes)


def _duplicate_objects(entries: list[Entry], names: list[str]) -> tuple[dict[tuple[int, str], tuple[int, ...]], str]:
    """({(position in `entries`, tile code): tile-local indices of objects to drop}, the one-line note about them):
    the objects whose gml:id an earlier entry (input order) already has (duplicate_ids.py). Only entries of a
    PLATEAU feature type that more than one entry has are read (gml:ids of one type never name another's)."""
    from collections import Counter

    from .duplicate_ids import FirstCopies

    per_type = Counter(str(e.manifest.get("feature_type")) for e in entries)
    firsts = FirstCopies()
    drops: dict[tuple[int, str], tuple[int, ...]] = {}
    for k_entry, e in enumerate(entries):
        if per_type[str(e.manifest.get("feature_type"))] < 2:
            continue
        codes = sorted(e.manifest["tiles"])
        ids = [e.tile_member(c, "gml_id") for c in codes]
        keep = firsts.file(names[k_entry], [(str(g), code) for code, a in zip(codes, ids) for g in a])
        start = 0
        for code, a in zip(codes, ids):
            k = keep[start:start + len(a)]
            start += len(a)
            if not k.all():
                drops[(k_entry, code)] = tuple(int(i) for i in np.flatnonzero(~k))
    return drops, firsts.summary() or ""


def _tile_ref(e: Entry, code: str, first_instance: int, drop: tuple[int, ...]) -> TileRef:
    """The TileRef of one tile: counts of its objects (without those in `drop`) from its manifest record, or
    from its arrays where objects are dropped or the record predates per-label counts."""
    from ..labels import BUILDING
    from .mesh import Fill

    rec = e.manifest["tiles"][code]
    objects, buildings = int(rec["objects"]), int(rec["buildings"])
    if drop or "labels" not in rec:
        lab = e.tile_member(code, "label")
        keep = np.ones(len(lab), dtype=bool)
        keep[list(drop)] = False
        if drop:
            fill = e.tile_member(code, "fill")
            objects = int(keep.sum())
            buildings = int(np.sum((lab == BUILDING) & (fill == Fill.SOLID) & keep))
        ids, counts = np.unique(lab[keep], return_counts=True)
        kinds = tuple((int(i), int(c)) for i, c in zip(ids, counts))
    else:
        kinds = tuple(sorted((int(k), int(v)) for k, v in rec["labels"].items()))
    return TileRef(e, code, first_instance, objects, int(rec["triangles"]), buildings, tuple(rec["bbox"]),
                   kinds, drop)


def region_filter_codes(index: CityIndex, region) -> dict[int, list[str]]:
    """{place id: allowed level-3 codes} for a --region value: None (everything), comma-separated mesh codes
    (4, 6 or 8 digits; a tile is allowed when its code starts with one of them), or a lat/lon box
    'lat_min,lon_min,lat_max,lon_max' (degrees; tiles whose square meets the box)."""
    allowed: dict[int, list[str]] = {}
    if region is None:
        return {p.id: p.codes for p in index.places}
    from .meshcode import Region, parse_region

    parsed = region if isinstance(region, Region) else parse_region(region)
    if parsed.box is not None:
        a, b, c, d = parsed.box
        for p in index.places:
            keep = []
            for code in p.codes:
                la0, lo0, la1, lo1 = mesh_bounds(code)
                if la0 < c and la1 > a and lo0 < d and lo1 > b:
                    keep.append(code)
            if keep:
                allowed[p.id] = keep
    else:
        for p in index.places:
            keep = [c for c in p.codes if any(c.startswith(x) for x in parsed.codes)]
            if keep:
                allowed[p.id] = keep
    if not allowed:
        have = ", ".join(c for p in index.places for c in p.codes[:3])
        raise ValueError(f"--region {region!r} contains none of the input's mesh tiles (some of them: {have}). "
                         "Fix: give mesh codes of the input or a lat_min,lon_min,lat_max,lon_max box over it")
    return allowed
