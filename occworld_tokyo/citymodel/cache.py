"""On-disk geometry cache: one parsed, triangulated source file -> one folder of per-mesh-tile arrays.

Key: sha256 of the file's bytes plus what decides how it is read (reader kind, PLATEAU feature type from the
name, OBJ EPSG code, `CACHE_VERSION`). A re-run with the same file finds the folder and skips parsing; a
changed file has another key and is read again. Layout under the cache root:

    v<CACHE_VERSION>/<key[:2]>/<key>/manifest.json   source name, CRS, file frame origin, skipped counts, tiles
    v<CACHE_VERSION>/<key[:2]>/<key>/<mesh8>.npz     triangles of the objects of one level-3 mesh tile

Tiles: every object belongs to the level-3 mesh square (JIS X 0410, meshcode.py) that contains the centre of
its bounding box, so an object crossing a tile edge stays whole in one tile. Terrain (dem TINs, published
per 10 km square) is split per triangle (by centroid) into one part per 1 km tile: terrain is filled column
by column, so the split changes no voxel.

Frames and units: triangles are float32 metres in the *file frame*, the transverse Mercator frame centred on
the centre of the file's latitude/longitude bounding box (`origin`, degrees), x east, y north, z the source
height (m above the vertical datum). index.py re-projects them into a place's frame. Bounding boxes in the
manifest are (lat_min, lon_min, lat_max, lon_max) degrees and (z_min, z_max) metres.

A folder is written under a temporary name and renamed when complete, so a crash leaves no half entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import labels as L
from . import crs as crs_mod
from .problems import triangulate_parsed
from .mesh import Fill
from .meshcode import mesh_codes
from .sources import Source

CACHE_VERSION = 1
MANIFEST = "manifest.json"


def default_cache_dir() -> Path:
    """$OCCWORLD_TOKYO_CACHE, else ~/.cache/occworld_tokyo/city."""
    env = os.environ.get("OCCWORLD_TOKYO_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "occworld_tokyo" / "city"


def source_key(source: Source) -> str:
    """Content key of a source (module docstring)."""
    h = hashlib.sha256()
    h.update(f"v{CACHE_VERSION}|{source.kind}|{source.feature_type}|{source.obj_epsg}|".encode())
    with source.open() as f:  # in chunks: memory stays flat whatever the file's size
        for chunk in iter(lambda: f.read(2 ** 22), b""):
            h.update(chunk)
    return h.hexdigest()


def entry_dir(root: Path, key: str) -> Path:
    return Path(root) / f"v{CACHE_VERSION}" / key[:2] / key


@dataclass(frozen=True)
class Entry:
    """A finished cache folder and its manifest."""

    key: str
    folder: Path
    manifest: dict

    def tile_member(self, code: str, key: str) -> np.ndarray:
        """One array of one tile (e.g. 'label', 'gml_id'), read alone (an npz member is read on access)."""
        path = self.folder / self.manifest["tiles"][code]["file"]
        try:
            with np.load(path, allow_pickle=False) as z:
                return z[key]
        except (OSError, ValueError, KeyError) as exc:
            raise OSError(f"cache file {path} is unreadable ({exc}); delete the folder {self.folder} (or the whole "
                          f"cache) and run again to re-read {self.manifest['display']}") from exc

    def tile_arrays(self, code: str) -> dict[str, np.ndarray]:
        """The arrays of one tile: triangles (T, 3, 3) float32 file frame, tri_object (T,) int32, label, fill
        (O,) uint8, gml_id (O,) str."""
        path = self.folder / self.manifest["tiles"][code]["file"]
        try:
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except (OSError, ValueError, KeyError) as exc:
            raise OSError(f"cache file {path} is unreadable ({exc}); delete the folder {self.folder} (or the whole "
                          f"cache) and run again to re-read {self.manifest['display']}") from exc


def read_entry(root: Path, key: str) -> Entry | None:
    """The cached entry of `key`, or None when there is none (or it is from an unfinished write)."""
    folder = entry_dir(root, key)
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return Entry(key, folder, manifest)


def _file_origin(crs: crs_mod.SourceCRS, coords: np.ndarray) -> tuple[float, float]:
    lon, lat = crs_mod.native_to_lonlat(crs, coords)
    return float(np.round((lat.min() + lat.max()) / 2, 7)), float(np.round((lon.min() + lon.max()) / 2, 7))


def _tiles_of(tris_local: np.ndarray, tri_object: np.ndarray, fills: np.ndarray, n_obj: int,
              lat0: float, lon0: float) -> np.ndarray:
    """(T,) int64 level-3 mesh code of every triangle: its object's bbox centre, or its centroid for terrain."""
    lo = np.full((n_obj, 2), np.inf)
    hi = np.full((n_obj, 2), -np.inf)
    np.minimum.at(lo, tri_object, tris_local[:, :, :2].min(axis=1))
    np.maximum.at(hi, tri_object, tris_local[:, :, :2].max(axis=1))
    centre = (lo + hi) / 2
    lon, lat = crs_mod.local_to_lonlat(centre[:, 0], centre[:, 1], lat0, lon0)
    obj_code = mesh_codes(lat, lon)
    codes = obj_code[tri_object]
    terrain = fills[tri_object] == Fill.TERRAIN
    if terrain.any():
        c = tris_local[terrain].mean(axis=1)
        lon, lat = crs_mod.local_to_lonlat(c[:, 0], c[:, 1], lat0, lon0)
        codes[terrain] = mesh_codes(lat, lon)
    return codes


def build_entry(source: Source, root: Path, key: str | None = None) -> Entry:
    """Parse `source` (loader.read_source), triangulate it in its file frame and write its cache folder.

    Raises the readers' CityModelError subclasses (the caller decides about skipping malformed files).
    """
    from .loader import read_source

    key = key or source_key(source)
    parsed = read_source(source)
    crs_mod.check_plausible(parsed.crs, parsed.soup.coords, parsed.display)
    manifest: dict = {"version": CACHE_VERSION, "display": parsed.display, "name": source.name,
                      "feature_type": source.feature_type, "crs": parsed.crs.name, "skipped": dict(parsed.skipped),
                      "bytes": int(parsed.n_bytes or 0), "origin": None, "tiles": {}}
    final = entry_dir(root, key)
    tmp = final.parent / f".{key}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        if parsed.n_objects and len(parsed.soup.coords):
            lat0, lon0 = _file_origin(parsed.crs, parsed.soup.coords)
            manifest["origin"] = [lat0, lon0]
            local = crs_mod.native_to_local(parsed.crs, parsed.soup.coords, lat0, lon0)
            tris, tri_poly = triangulate_parsed(parsed, local)  # counts and flags degenerate / self-intersecting
            manifest["skipped"] = dict(parsed.skipped)
            tri_object = parsed.soup.poly_object[tri_poly].astype(np.int64)
            labels = np.asarray(parsed.labels, dtype=np.uint8)
            fills = np.asarray(parsed.fills, dtype=np.uint8)
            has = np.zeros(parsed.n_objects, dtype=bool)
            has[tri_object] = True
            if not has.all():
                manifest["skipped"]["objects_without_geometry"] = (
                    manifest["skipped"].get("objects_without_geometry", 0) + int((~has).sum()))
            if len(tris):
                codes = _tiles_of(tris, tri_object, fills, parsed.n_objects, lat0, lon0)
                for code in np.unique(codes):
                    manifest["tiles"][str(code)] = _write_tile(tmp, str(code), tris[codes == code],
                                                               tri_object[codes == code], labels, fills,
                                                               parsed.gml_ids, lat0, lon0)
        manifest["flagged"] = {k: list(v) for k, v in sorted(parsed.flagged.items())}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True), encoding="utf-8")
        try:
            os.replace(tmp, final)
        except OSError:  # another process finished the same key first: keep theirs
            if read_entry(root, key) is None:
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    entry = read_entry(root, key)
    assert entry is not None
    return entry


def _write_tile(folder: Path, code: str, tris: np.ndarray, tri_object: np.ndarray, labels: np.ndarray,
                fills: np.ndarray, gml_ids: list[str], lat0: float, lon0: float) -> dict:
    """Write one tile's npz (objects renumbered 0.. in first-appearance order); returns its manifest record."""
    objs, first = np.unique(tri_object, return_index=True)
    objs = objs[np.argsort(first, kind="stable")]  # keep document order
    remap = np.full(int(tri_object.max()) + 1, -1, dtype=np.int64)
    remap[objs] = np.arange(len(objs))
    local_obj = remap[tri_object]
    order = np.argsort(local_obj, kind="stable")
    tris, local_obj = tris[order], local_obj[order]
    name = f"{code}.npz"
    np.savez(folder / name, triangles=tris.astype(np.float32), tri_object=local_obj.astype(np.int32),
             label=labels[objs], fill=fills[objs], gml_id=np.array([gml_ids[o] for o in objs], dtype=str))
    pts = tris.reshape(-1, 3)
    lon, lat = crs_mod.local_to_lonlat(pts[:, 0], pts[:, 1], lat0, lon0)
    lab = labels[objs]
    ids, counts = np.unique(lab, return_counts=True)
    return {"file": name, "objects": int(len(objs)), "triangles": int(len(tris)),
            "buildings": int(np.sum((lab == L.BUILDING) & (fills[objs] == Fill.SOLID))),
            "labels": {str(int(i)): int(c) for i, c in zip(ids, counts)},
            "bbox": [float(lat.min()), float(lon.min()), float(lat.max()), float(lon.max())],
            "z": [float(pts[:, 2].min()), float(pts[:, 2].max())]}


def ensure_entry(source: Source, root: Path) -> tuple[Entry, bool]:
    """(the cache entry of `source`, whether it was parsed now). Reads the file once to hash it."""
    key = source_key(source)
    entry = read_entry(root, key)
    if entry is not None:
        return entry, False
    return build_entry(source, root, key), True
