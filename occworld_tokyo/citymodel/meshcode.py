"""Japanese standard grid square codes (JIS X 0410), the tiling PLATEAU names its files by.

Level 1: 4 digits, 40' latitude x 1 deg longitude. Level 2: 6 digits, 5' x 7.5' (about 10 km). Level 3:
8 digits, 30" x 45" (about 0.93 km north-south x 1.14 km east-west at Tokyo's latitude). Angles in degrees
(JGD2011 latitude / longitude).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

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


# where JIS X 0410 squares of Japan lie (degrees): a box outside is a mistake (swapped lat/lon, another unit)
JAPAN_LAT = (20.0, 46.0)
JAPAN_LON = (122.0, 154.0)
REGION_FORMS = ("comma-separated 4-, 6- or 8-digit mesh codes (e.g. 53394525,533945) or a box "
                "lat_min,lon_min,lat_max,lon_max in degrees (e.g. 35.68,139.69,35.70,139.71)")


@dataclass(frozen=True)
class Region:
    """A parsed --region: mesh code prefixes, or a lat/lon box (lat_min, lon_min, lat_max, lon_max)."""

    codes: tuple[str, ...] = ()
    box: tuple[float, float, float, float] | None = None


def parse_region(text: str) -> Region:
    """--region's value -> Region; ValueError naming the item and the two forms otherwise. An item is a mesh code
    only when it has 4, 6 or 8 digits; four numbers of another shape are a box, checked for order and for lying
    in Japan (so a swapped box or lon,lat order is named, never read as codes)."""
    items = [s.strip() for s in str(text).split(",")]
    if not text or not str(text).strip() or any(not s for s in items):
        raise ValueError(f"--region {text!r} has an empty item: give {REGION_FORMS}")
    if all(_CODE_RE.match(s) for s in items):
        for s in items:  # digits 5-6 of a level-2 code, 7-8 of a level-3 code, are 0-7 and 0-9
            if len(s) >= 6 and not (s[4] in "01234567" and s[5] in "01234567"):
                raise ValueError(f"--region: {s} is not a mesh code (its 5th and 6th digits must be 0-7)")
        return Region(codes=tuple(items))
    if len(items) != 4:
        bad = next(s for s in items if not _CODE_RE.match(s))
        raise ValueError(f"--region {text!r}: {bad!r} is not a 4-, 6- or 8-digit mesh code; give {REGION_FORMS}")
    try:
        a, b, c, d = (float(s) for s in items)
    except ValueError:
        raise ValueError(f"--region {text!r} is neither mesh codes nor four numbers; give {REGION_FORMS}") from None
    if not all(math.isfinite(v) for v in (a, b, c, d)):
        raise ValueError(f"--region {text!r}: a box needs finite degrees; give {REGION_FORMS}")
    if not (JAPAN_LAT[0] <= min(a, c) and max(a, c) <= JAPAN_LAT[1] and JAPAN_LON[0] <= min(b, d)
            and max(b, d) <= JAPAN_LON[1]):
        hint = (" (it looks like lon,lat: the order is lat_min,lon_min,lat_max,lon_max)"
                if JAPAN_LON[0] <= min(a, c) and JAPAN_LAT[1] >= max(b, d) else "")
        raise ValueError(f"--region {text!r}: the box must lie in Japan, latitude {JAPAN_LAT[0]:g}..{JAPAN_LAT[1]:g} "
                         f"and longitude {JAPAN_LON[0]:g}..{JAPAN_LON[1]:g} degrees{hint}")
    if not (a < c and b < d):
        raise ValueError(f"--region {text!r}: a box is lat_min,lon_min,lat_max,lon_max with lat_min < lat_max and "
                         f"lon_min < lon_max (got lat {a:g}..{c:g}, lon {b:g}..{d:g}); swap the values")
    return Region(box=(a, b, c, d))
