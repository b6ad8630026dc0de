"""The same city object in two input files (two copies of a tile, two releases of one area): counted once.

A PLATEAU gml:id names one city object across files and releases, so an object whose gml:id an earlier input
file already has *in the same level-3 mesh tile* (the tile holding the centre of its bounding box, as the cache
files objects; a re-surveyed building stays in its tile) is the same object again: it is dropped from the later
file and counted (`skipped['duplicate_objects']`). The tile is part of the key because ids are not unique
everywhere: the sample city numbers its buildings per tile file, and such ids in other tiles are other
objects. Earlier means input order (sources sorted by file name, as instance ids are numbered), so the kept copy
does not depend on the order the files were given or parsed in. Ids made up for features without a gml:id
(`<file>#<n>`, OBJ `<file>:<n>`) never collide across files. Terrain split over tiles keeps one gml:id in several
tiles of its own file: only keys seen in another *file* count.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


class FirstCopies:
    """Keeps, object by object over files in input order, only the first file's copy of each gml:id."""

    def __init__(self) -> None:
        self._owner: dict[tuple[str, str], int] = {}  # (gml:id, mesh code) -> the file that has it first
        self.dropped: dict[str, int] = {}  # display name of a file -> objects dropped from it
        self.kept_in: dict[str, str] = {}  # display name of a file -> the (first) file holding its dropped copies
        self._names: list[str] = []

    def file(self, display: str, ids: Iterable[tuple[str, str]]) -> np.ndarray:
        """Register the objects of the next file, as (gml:id, level-3 mesh code) keys; returns (len(ids),) bool:
        True for the objects to keep."""
        ids = list(ids)
        k = len(self._names)
        self._names.append(display)
        keep = np.ones(len(ids), dtype=bool)
        for i, gid in enumerate(ids):
            owner = self._owner.setdefault(gid, k)
            if owner != k:
                keep[i] = False
                self.kept_in.setdefault(display, self._names[owner])
        n = int((~keep).sum())
        if n:
            self.dropped[display] = self.dropped.get(display, 0) + n
        return keep

    @property
    def total(self) -> int:
        return sum(self.dropped.values())

    def summary(self) -> str | None:
        """One line naming the files and counts, or None when no object was duplicated."""
        if not self.dropped:
            return None
        files = "; ".join(f"{n} from {name} (first in {self.kept_in[name]})" for name, n in self.dropped.items())
        return (f"note: {self.total} city object(s) appear again under a gml:id an earlier input file already has "
                f"in the same mesh tile (the same object in two files or releases): each is counted once, from the first file in input "
                f"(file-name) order; dropped {files}. Give one release of each area to avoid this")
