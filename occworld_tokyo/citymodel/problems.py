"""Geometry problems of one input file, counted and named: triangulation with its problem report, and the one
summary line per file that the loader (a CityModelWarning) and the city index (a note of its summary) print.

Counts land in `skipped` (meta.json `city.skipped`); the summary names the file and a few feature ids
(`parsed.FLAGGED_IDS` per problem), never one line per polygon.
"""

from __future__ import annotations

import numpy as np

from .geometry.triangulate import polygon_problems, triangulate
from .parsed import FLAGGED_IDS, ParsedFile

GEOMETRY_PROBLEMS = {  # skipped / flagged key -> what happened to those polygons, in the summary's words
    "degenerate_polygons": "degenerate polygon(s) (fewer than 3 distinct vertices or zero area; dropped)",
    "self_intersecting_polygons": "self-intersecting polygon(s) (the ring crosses itself; kept as triangulated, "
                                  "their voxels may be wrong)",
}


def triangulate_parsed(parsed: ParsedFile, local: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Triangulate the polygons of `parsed` at the coordinates `local` ((N, 3) metres, the soup's vertices in a
    metric frame); every degenerate or self-intersecting polygon is counted and its feature flagged in `parsed`
    (`polygon_problems`). Returns (triangles (T, 3, 3) float64, tri_polygon (T,) int64)."""
    soup = parsed.soup.with_coords(local)
    tris, tri_poly, _ = triangulate(soup)
    for key, polys in polygon_problems(soup, tri_poly, tris).items():
        if len(polys):
            objects = np.unique(soup.poly_object[polys])[:50]
            parsed.flag(key, [parsed.gml_ids[o] for o in objects if o < parsed.n_objects], len(polys))
    return tris, tri_poly


def problem_summary(display: str, skipped: dict, flagged: dict | None) -> str | None:
    """'WARNING: <file>: 3 degenerate polygon(s) (...) in bldg_a, bldg_b, ...; ...' or None when the file has
    none. `flagged` (reason -> feature ids) may be missing (a cache entry written before ids were kept)."""
    parts = []
    for key, words in GEOMETRY_PROBLEMS.items():
        n = int(skipped.get(key, 0) or 0)
        if n <= 0:
            continue
        ids = list((flagged or {}).get(key, []))
        where = (f" in {', '.join(ids)}" + (", ..." if len(ids) >= FLAGGED_IDS else "")) if ids else ""
        parts.append(f"{n} {words}{where}")
    if not parts:
        return None
    return f"WARNING: {display}: " + "; ".join(parts) + " (counted in meta.json city.skipped; fix the features in " \
           "the source data or re-download the file if they matter)"
