"""load_city: PLATEAU CityGML / OBJ inputs -> one CityMesh in one local metric frame.

Steps: discover sources (sources.py) -> read each file in its native CRS (gml_reader.py, obj_reader.py),
check the coordinates are plausible for Japan -> choose the frame centre (the centre of the lat/lon
bounding box of all data) -> project every file with pyproj (crs.py) -> triangulate (geometry/) ->
number objects 1..N in sorted file order, document order within a file.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from . import crs as crs_mod
from .duplicate_ids import FirstCopies
from .errors import CityModelError, MalformedXMLError, CityModelWarning
from .gml_reader import read_gml
from .mesh import CityMesh, GeoOrigin
from .obj_reader import read_obj
from .parsed import ParsedFile
from .problems import problem_summary, triangulate_parsed
from .sources import Source, discover


def read_source(source: Source) -> ParsedFile:
    """Read one source with the reader for its kind."""
    parsed = read_obj(source) if source.kind == "obj" else read_gml(source)
    parsed.keep_objects_with_polygons()
    return parsed


def choose_origin(parsed: list[ParsedFile]) -> tuple[float, float]:
    """(lat0, lon0): the centre of the geographic bounding box of all parsed coordinates."""
    lo = np.array([np.inf, np.inf])
    hi = -lo
    for p in parsed:
        if not len(p.soup.coords):
            continue
        lon, lat = crs_mod.native_to_lonlat(p.crs, p.soup.coords)
        lo = np.minimum(lo, [lat.min(), lon.min()])
        hi = np.maximum(hi, [lat.max(), lon.max()])
    centre = (lo + hi) / 2
    return float(np.round(centre[0], 7)), float(np.round(centre[1], 7))


def _file_mesh(p: ParsedFile, lat0: float, lon0: float, first_instance: int) -> CityMesh:
    local = crs_mod.native_to_local(p.crs, p.soup.coords, lat0, lon0)
    tris, tri_poly = triangulate_parsed(p, local)  # counts and flags degenerate / self-intersecting polygons
    skipped = dict(p.skipped)
    tri_object = p.soup.poly_object[tri_poly]
    # an object whose polygons were all degenerate has no triangle: drop it
    has = np.zeros(p.n_objects, dtype=bool)
    has[tri_object] = True
    if not has.all():
        skipped["objects_without_geometry"] = skipped.get("objects_without_geometry", 0) + int((~has).sum())
    remap = np.cumsum(has) - 1
    n = int(has.sum())
    return CityMesh(
        triangles=tris.astype(np.float32),
        tri_object=remap[tri_object],
        object_label=np.asarray(p.labels, dtype=np.uint8)[has],
        object_instance=np.arange(first_instance, first_instance + n, dtype=np.int32),
        object_fill=np.asarray(p.fills, dtype=np.uint8)[has],
        object_gml_id=[g for g, h in zip(p.gml_ids, has) if h],
        source_files=[p.display],
        skipped=skipped,
    )


def _object_tiles(m: CityMesh, lat0: float, lon0: float) -> list[str]:
    """The level-3 mesh code of each object of `m` (frame centred on lat0, lon0): the tile the cache files it in
    (its bounding-box centre; terrain: its first triangle's centroid)."""
    from .cache import _tiles_of

    codes = _tiles_of(m.triangles.astype(np.float64), m.tri_object.astype(np.int64), m.object_fill, m.n_objects,
                      lat0, lon0)
    first = np.full(m.n_objects, -1, dtype=np.int64)
    objects, index = np.unique(m.tri_object, return_index=True)
    first[objects] = index
    return [str(codes[i]) if i >= 0 else "" for i in first]


def _warn(message: str) -> None:
    warnings.warn(message, CityModelWarning, stacklevel=3)


def load_city(inputs: str | Path | Sequence[str | Path], *, strict: bool = False,
              progress: bool = True) -> CityMesh:
    """Read PLATEAU city models (CityGML .gml, folders, .zip, *_<type>_6677.obj) into one CityMesh.

    strict=False: a malformed XML file is skipped with a CityModelWarning (counted in
    `skipped['malformed_xml']`); strict=True raises MalformedXMLError. Unsafe XML (entity declarations,
    external DTD), unknown CRS and implausible coordinates always raise (subclasses of CityModelError).
    """
    disc = discover(inputs)
    parsed: list[ParsedFile] = []
    skipped: dict[str, int] = dict(disc.skipped)
    problems: list[str] = []
    bar = tqdm(disc.sources, desc="reading city model", unit="file", disable=not progress, file=sys.stderr,
               leave=False)
    for source in bar:
        try:
            p = read_source(source)
        except MalformedXMLError as e:
            if strict:
                raise
            _warn(f"skipped: {e}")
            problems.append(str(e))
            skipped["malformed_xml"] = skipped.get("malformed_xml", 0) + 1
            continue
        crs_mod.check_plausible(p.crs, p.soup.coords, p.display)
        parsed.append(p)
    bar.close()
    if not any(p.n_objects for p in parsed):
        detail = "; ".join(problems) if problems else (
            f"skipped: {dict(sorted({**skipped, **{k: v for p in parsed for k, v in p.skipped.items()}}.items()))}")
        raise CityModelError(
            f"no city objects could be read from {', '.join(s.display for s in disc.sources)} ({detail}). "
            "Fix: check that the files are PLATEAU CityGML of a supported type (bldg, dem, tran, brid, rwy, veg, "
            "frn, wtr, trk) or *_<type>_6677.obj exports.")
    lat0, lon0 = choose_origin(parsed)
    meshes: list[CityMesh] = []
    next_instance = 1
    firsts = FirstCopies()
    for p in parsed:
        if not p.n_objects:
            meshes.append(CityMesh(np.zeros((0, 3, 3)), np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0), [],
                                   source_files=[p.display], skipped=dict(p.skipped)))
            continue
        m = _file_mesh(p, lat0, lon0, next_instance)
        summary = problem_summary(p.display, m.skipped, p.flagged)
        if summary:
            _warn(summary)
        keep = firsts.file(p.display, zip(m.object_gml_id, _object_tiles(m, lat0, lon0)))
        if not keep.all():  # the same objects in an earlier file: counted once (duplicate_ids.py)
            m = m.select(keep)
            m.object_instance = np.arange(next_instance, next_instance + m.n_objects, dtype=np.int32)
        next_instance += m.n_objects
        meshes.append(m)
    mesh = CityMesh.concatenate(meshes)
    if firsts.total:
        skipped["duplicate_objects"] = skipped.get("duplicate_objects", 0) + firsts.total
        _warn(firsts.summary())
    for k, v in skipped.items():
        mesh.skipped[k] = mesh.skipped.get(k, 0) + v
    crs_names = sorted({p.crs.name for p in parsed})
    mesh.origin = GeoOrigin(lat=lat0, lon=lon0, height=0.0, source_crs="+".join(crs_names),
                            projected_crs=crs_mod.local_proj_string(lat0, lon0))
    return mesh
