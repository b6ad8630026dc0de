"""Japanese standard grid square codes (JIS X 0410), the tiling PLATEAU names its files by.

Level 1: 4 digits, 40' latitude x 1 deg longitude. Level 2: 6 digits, 5' x 7.5' (about 10 km). Level 3:
8 digits, 30" x 45" (about 0.93 km north-south x 1.14 km east-west at Tokyo's latitude). Angles in degrees
(JGD2011 latitude / longitude).
"""

from __future__ import annotations

import re

import numpy as np

_CODE_RE = re.compile(r"^\d{4}(\d{2}(\d{2})?)?$")
LEVEL_OF_DIGITS = {4: 1, 6: 2, 8: 3}


def mesh_code(lat: float, lon: float, level: int = 3) -> str:
    """Grid square code of level 1 (4 digits), 2 (6 digits) or 3 (8 digits, ~1 km) containing (lat, lon)."""
    lat, lon = lat + 1e-9, lon + 1e-9  # values on a square's edge belong to the square north/east of it
    p, a = divmod(lat * 60.0, 40.0)
    u = int(lon) - 100
    f = lon - int(lon)
    code = f"{int(p):02d}{u:02d}"
    q, b = divmod(a, 5.0)
    v, g = divmod(f * 60.0, 7.5)
    if level >= 2:
        code += f"{int(q)}{int(v)}"
    if level >= 3:
        r = int(b * 60.0 // 30.0)
        w = int(g * 60.0 // 45.0)
        code += f"{r}{w}"
    return code


def mesh_codes(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Vectorised level-3 codes as int64 (e.g. 53394525) for arrays of points."""
    lat = np.asarray(lat, np.float64) + 1e-9
    lon = np.asarray(lon, np.float64) + 1e-9
    p, a = np.divmod(lat * 60.0, 40.0)
    u = np.floor(lon) - 100
    f = lon - np.floor(lon)
    q, b = np.divmod(a, 5.0)
    v, g = np.divmod(f * 60.0, 7.5)
    r = np.floor(b * 60.0 / 30.0)
    w = np.floor(g * 60.0 / 45.0)
    return (((((p * 100 + u) * 10 + q) * 10 + v) * 10 + r) * 10 + w).astype(np.int64)


def check_code(code: str) -> str:
    """The code itself if it is a 4-, 6- or 8-digit grid square code; ValueError naming it otherwise."""
    code = str(code).strip()
    if not _CODE_RE.match(code):
        raise ValueError(f"mesh code {code!r} is not a 4-, 6- or 8-digit JIS X 0410 grid square code "
                         "(e.g. 5339 level 1, 533945 level 2, 53394525 level 3)")
    return code


def mesh_bounds(code: str) -> tuple[float, float, float, float]:
    """(lat_min, lon_min, lat_max, lon_max) in degrees of a level-1, 2 or 3 square."""
    code = check_code(code)
    lat = int(code[0:2]) * 40.0 / 60.0
    lon = int(code[2:4]) + 100.0
    dlat, dlon = 40.0 / 60.0, 1.0
    if len(code) >= 6:
        dlat, dlon = 5.0 / 60.0, 7.5 / 60.0
        lat += int(code[4]) * dlat
        lon += int(code[5]) * dlon
    if len(code) >= 8:
        dlat, dlon = 30.0 / 3600.0, 45.0 / 3600.0
        lat += int(code[6]) * dlat
        lon += int(code[7]) * dlon
    return lat, lon, lat + dlat, lon + dlon


def mesh_center(code: str) -> tuple[float, float]:
    """(lat, lon) of the centre of a square."""
    a, b, c, d = mesh_bounds(code)
    return (a + c) / 2, (b + d) / 2


def neighbour(code: str, d_north: int, d_east: int) -> str:
    """The level-3 code d_north squares north and d_east squares east of `code` (level 3)."""
    lat, lon = mesh_center(code)
    return mesh_code(lat + d_north * 30.0 / 3600.0, lon + d_east * 45.0 / 3600.0, 3)
