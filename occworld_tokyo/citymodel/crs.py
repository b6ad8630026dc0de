"""Coordinate reference systems: parsing srsName, plausibility checks, and the local metric frame.

The local frame used for every load is a transverse Mercator centred on the data, scale 1, on the
GRS80 ellipsoid (the ellipsoid of JGD2011):

    +proj=tmerc +lat_0=<lat0> +lon_0=<lon0> +k=1 +x_0=0 +y_0=0 +ellps=GRS80 +units=m

x = east, y = north (metres), z = the input height unchanged (metres above the data's vertical datum,
Tokyo Bay mean sea level for EPSG:6697). Over a few kilometres around its centre the scale error of such
a projection is below 1e-6, so it is right anywhere in Japan (no plane-rectangular zone is hard-coded).

Supported source CRSs:
- EPSG:6697 (JGD2011 geographic + height): axis order latitude, longitude, height;
- EPSG:6668 (JGD2011 geographic 2D) and EPSG:4326 / EPSG:4612 (treated like 6668, same order lat, lon);
- EPSG:6669-6687 (JGD2011 plane rectangular zones I-XIX): axis order X = north, Y = east (metres).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from pyproj import CRS, Transformer

from .errors import CRSError, CoordinateRangeError

# Japan's extent with a margin (Okinotorishima 20.4 N, Minamitorishima 153.99 E, Yonaguni 122.9 E).
LAT_RANGE = (20.0, 46.0)
LON_RANGE = (122.0, 154.5)
HEIGHT_RANGE = (-200.0, 4000.0)

GEOGRAPHIC_3D = {6697}
GEOGRAPHIC_2D = {6668, 4326, 4612}
PLANE_RECTANGULAR = set(range(6669, 6688))

_EPSG_RE = re.compile(r"EPSG(?:/\d+(?:\.\d+)*)?[/:]+(?:\d+(?:\.\d+)*[/:]+)?(\d+)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class SourceCRS:
    """The CRS of one input file."""

    epsg: int

    @property
    def name(self) -> str:
        return f"EPSG:{self.epsg}"

    @property
    def is_geographic(self) -> bool:
        return self.epsg in GEOGRAPHIC_3D or self.epsg in GEOGRAPHIC_2D

    @property
    def dimension(self) -> int:
        """Coordinates per point in a posList when no srsDimension says otherwise."""
        return 2 if self.epsg in GEOGRAPHIC_2D else 3


def parse_srs_name(srs_name: str | None, where: str) -> SourceCRS:
    """EPSG code from a GML srsName (URL, URN or 'EPSG:nnnn' form); raise CRSError naming `where`."""
    if not srs_name or not srs_name.strip():
        raise CRSError(
            f"{where}: the gml:Envelope has no srsName, so the coordinate system is unknown. "
            "Fix: PLATEAU files declare srsName=\"http://www.opengis.net/def/crs/EPSG/0/6697\" on the root "
            "gml:Envelope; use the file as published or add that attribute.")
    m = _EPSG_RE.search(srs_name.strip())
    if not m:
        raise CRSError(f"{where}: srsName {srs_name!r} is not an EPSG code. Fix: use EPSG:6697 (lat, lon, height) "
                       "or EPSG:6668 (lat, lon) as PLATEAU publishes.")
    code = int(m.group(1))
    if code not in GEOGRAPHIC_3D | GEOGRAPHIC_2D | PLANE_RECTANGULAR:
        raise CRSError(f"{where}: srsName {srs_name!r} (EPSG:{code}) is not supported. Supported: EPSG:6697, "
                       "EPSG:6668 (JGD2011 geographic), EPSG:6669-6687 (JGD2011 plane rectangular). "
                       "Fix: re-export the data in EPSG:6697.")
    return SourceCRS(code)


def local_proj_string(lat0: float, lon0: float) -> str:
    """The proj string of the local frame centred on (lat0, lon0)."""
    return (f"+proj=tmerc +lat_0={lat0:.9f} +lon_0={lon0:.9f} +k=1 +x_0=0 +y_0=0 "
            "+ellps=GRS80 +units=m +no_defs")


@lru_cache(maxsize=32)
def _plane_proj(epsg: int) -> str:
    """The proj parameters of a JGD2011 plane rectangular zone (the projection only, no axis order)."""
    with warnings.catch_warnings():  # "you will lose information": only the projection is used here
        warnings.simplefilter("ignore", UserWarning)
        params = CRS.from_epsg(epsg).to_proj4()
    return " ".join(p for p in params.split() if not p.startswith(("+type", "+no_defs")))


@lru_cache(maxsize=64)
def _to_local(epsg: int, lat0: float, lon0: float) -> Transformer:
    local = local_proj_string(lat0, lon0)
    if epsg in PLANE_RECTANGULAR:
        # input (easting, northing) -> geographic -> local
        pipeline = f"+proj=pipeline +step +inv {_plane_proj(epsg)} +step {local}"
    else:
        # input (lon, lat) degrees -> local
        pipeline = f"+proj=pipeline +step +proj=unitconvert +xy_in=deg +xy_out=rad +step {local}"
    return Transformer.from_pipeline(pipeline)


@lru_cache(maxsize=32)
def _plane_to_geographic(epsg: int) -> Transformer:
    return Transformer.from_pipeline(
        f"+proj=pipeline +step +inv {_plane_proj(epsg)} +step +proj=unitconvert +xy_in=rad +xy_out=deg")


def native_to_lonlat(crs: SourceCRS, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lon, lat) in degrees of native points (N, >=2): geographic rows are (lat, lon), plane rows (X=north, Y=east)."""
    if crs.is_geographic:
        return pts[:, 1].astype(np.float64), pts[:, 0].astype(np.float64)
    lon, lat = _plane_to_geographic(crs.epsg).transform(pts[:, 1], pts[:, 0])
    return np.asarray(lon), np.asarray(lat)


def native_to_local(crs: SourceCRS, pts: np.ndarray, lat0: float, lon0: float) -> np.ndarray:
    """Project native points (N, 3) to the local frame (N, 3): x east, y north, z unchanged."""
    pts = np.asarray(pts, dtype=np.float64)
    out = np.empty((len(pts), 3), dtype=np.float64)
    if not len(pts):
        return out
    tr = _to_local(crs.epsg, float(lat0), float(lon0))
    if crs.is_geographic:
        x, y = tr.transform(pts[:, 1], pts[:, 0])  # (lon, lat)
    else:
        x, y = tr.transform(pts[:, 1], pts[:, 0])  # (easting Y, northing X)
    out[:, 0] = x
    out[:, 1] = y
    out[:, 2] = pts[:, 2] if pts.shape[1] > 2 else 0.0
    return out


def local_to_lonlat(x: np.ndarray, y: np.ndarray, lat0: float, lon0: float) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of the local frame: local (x east, y north) metres -> (lon, lat) degrees."""
    tr = _to_local(6668, float(lat0), float(lon0))
    lon, lat = tr.transform(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64),
                            direction="INVERSE")
    return np.asarray(lon), np.asarray(lat)


def lonlat_to_local(lon: np.ndarray, lat: np.ndarray, lat0: float, lon0: float) -> tuple[np.ndarray, np.ndarray]:
    """Geographic (lon, lat) degrees -> local (x east, y north) metres."""
    x, y = _to_local(6668, float(lat0), float(lon0)).transform(np.asarray(lon, dtype=np.float64),
                                                               np.asarray(lat, dtype=np.float64))
    return np.asarray(x), np.asarray(y)


def check_plausible(crs: SourceCRS, pts: np.ndarray, where: str) -> None:
    """Raise CoordinateRangeError when native points are not plausibly in Japan (names the likely cause)."""
    if not len(pts):
        return
    if not np.isfinite(pts).all():
        raise CoordinateRangeError(f"{where}: coordinates contain NaN or infinity. Fix: repair or re-export the file.")
    lon, lat = native_to_lonlat(crs, pts)
    bad_lat = (lat < LAT_RANGE[0]) | (lat > LAT_RANGE[1])
    bad_lon = (lon < LON_RANGE[0]) | (lon > LON_RANGE[1])
    if bad_lat.any() or bad_lon.any():
        i = int(np.flatnonzero(bad_lat | bad_lon)[0])
        order = "(latitude, longitude[, height])" if crs.is_geographic else "(X = north, Y = east, height)"
        raise CoordinateRangeError(
            f"{where}: point {i} lies at lat {lat[i]:.6f}, lon {lon[i]:.6f}, outside Japan "
            f"(lat {LAT_RANGE[0]}..{LAT_RANGE[1]}, lon {LON_RANGE[0]}..{LON_RANGE[1]}) for {crs.name}. "
            f"The axis order may be swapped: {crs.name} expects {order}. "
            "Fix: check the srsName and the coordinate order of the file.")
    if pts.shape[1] > 2:
        z = pts[:, 2]
        bad = (z < HEIGHT_RANGE[0]) | (z > HEIGHT_RANGE[1])
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise CoordinateRangeError(
                f"{where}: point {i} has height {z[i]:.3f} m, outside {HEIGHT_RANGE[0]:.0f}..{HEIGHT_RANGE[1]:.0f} m. "
                "The axis order may be swapped (heights must come third), or the heights are not in metres. "
                "Fix: check the srsName/srsDimension and the coordinate order of the file.")
