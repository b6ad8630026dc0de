"""ParsedFile: what a reader returns for one input file, before projection and triangulation."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .crs import SourceCRS
from .geometry.polygons import PolygonSoup

FLAGGED_IDS = 5  # feature ids kept per kind of geometry problem (a summary names a few, never one line each)


@dataclass
class ParsedFile:
    """Objects of one file, with polygons in the file's native CRS (see crs.py for axis orders)."""

    display: str
    crs: SourceCRS
    soup: PolygonSoup  # native coordinates
    gml_ids: list[str]  # per object
    labels: list[int]  # per object, storage label ids
    fills: list[int]  # per object, Fill values
    skipped: dict[str, int] = field(default_factory=dict)
    n_bytes: int = 0
    flagged: dict[str, list[str]] = field(default_factory=dict)  # reason -> the first FLAGGED_IDS feature ids

    @property
    def n_objects(self) -> int:
        return len(self.gml_ids)

    def count(self, key: str, n: int = 1) -> None:
        self.skipped[key] = self.skipped.get(key, 0) + n

    def flag(self, key: str, feature_ids: list[str], n: int | None = None) -> None:
        """Count `n` (default: one per id) problems `key` and remember the first FLAGGED_IDS distinct feature ids
        that had one, for the summary warning (citymodel.problems)."""
        if n is None:
            n = len(feature_ids)
        if n <= 0:
            return
        self.count(key, n)
        ids = self.flagged.setdefault(key, [])
        for fid in feature_ids:
            if len(ids) >= FLAGGED_IDS:
                break
            if fid not in ids:
                ids.append(fid)

    def keep_objects_with_polygons(self) -> None:
        """Drop objects that ended up without any polygon (counted as '<label>_no_geometry')."""
        has = np.zeros(self.n_objects, dtype=bool)
        has[self.soup.poly_object] = True
        if has.all():
            return
        remap = np.cumsum(has) - 1
        self.soup.poly_object = remap[self.soup.poly_object]
        self.gml_ids = [g for g, h in zip(self.gml_ids, has) if h]
        self.labels = [x for x, h in zip(self.labels, has) if h]
        self.fills = [x for x, h in zip(self.fills, has) if h]
        self.count("objects_without_geometry", int((~has).sum()))
