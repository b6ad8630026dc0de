"""Input discovery: turn files, folders and PLATEAU .zip archives into a sorted list of readable sources.

A source is one CityGML (.gml) or OBJ (.obj) file, on disk or a member of a zip archive (read from the
archive directly, never extracted to disk). The PLATEAU feature type (`bldg`, `dem`, ...) comes from the
file name `<mesh>_<type>_<crs>_..._op.gml` (or the `udx/<type>/` folder); the order of sources is
sorted by file name, then by full path, so the same inputs always give the same instance ids (and a zip
of a folder gives the same order as the folder itself).
"""

from __future__ import annotations

import io
import re
import zipfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..labels import PLATEAU_TYPE_TO_LABEL
from .errors import CityModelError

SUPPORTED_TYPES = frozenset(PLATEAU_TYPE_TO_LABEL)
_GML_NAME_RE = re.compile(r"^\d{6,8}_([a-z]+)_", re.IGNORECASE)
_OBJ_NAME_RE = re.compile(r"_([a-z]+)_(\d{4,5})\.obj$", re.IGNORECASE)


@dataclass(frozen=True)
class Source:
    """One input file: a path on disk, or a member of a zip archive."""

    display: str  # what messages and CityMesh.source_files show ("a.zip!udx/bldg/x.gml" for members)
    kind: str  # "gml" or "obj"
    feature_type: str | None  # PLATEAU type from the name ("bldg", ...), None when the name does not say
    path: Path  # the file, or the zip archive holding it
    member: str | None = None  # zip member name
    obj_epsg: int | None = None  # EPSG code of an OBJ file, from its name

    @property
    def name(self) -> str:
        return (self.member or self.path.name).rsplit("/", 1)[-1]

    def open(self) -> BinaryIO:
        """A binary stream of the file's bytes (caller closes it)."""
        if self.member is None:
            return open(self.path, "rb")
        zf = zipfile.ZipFile(self.path)
        try:
            data = zf.read(self.member)
        finally:
            zf.close()
        return io.BytesIO(data)

    def read_bytes(self) -> bytes:
        with self.open() as f:
            return f.read()

    def size(self) -> int:
        if self.member is None:
            return self.path.stat().st_size
        with zipfile.ZipFile(self.path) as zf:
            return zf.getinfo(self.member).file_size


@dataclass
class Discovery:
    """What discover() found: the sources to read, unsupported feature types skipped, everything seen."""

    sources: list[Source]
    skipped: dict[str, int]  # PLATEAU type -> number of files skipped (e.g. {"luse": 3})
    seen: Counter  # file suffix -> count, for error messages


def _gml_type(rel: str) -> str | None:
    parts = rel.replace("\\", "/").split("/")
    m = _GML_NAME_RE.match(parts[-1])
    if m:
        return m.group(1).lower()
    if len(parts) >= 2 and parts[-2].lower() in SUPPORTED_TYPES:
        return parts[-2].lower()
    return None


def _classify(rel: str, display: str, path: Path, member: str | None, disc: Discovery) -> None:
    """Add one file (relative name `rel`) to the discovery, or count it as skipped."""
    name = rel.replace("\\", "/").rsplit("/", 1)[-1]
    suffix = Path(name).suffix.lower()
    disc.seen[suffix or "(no suffix)"] += 1
    if suffix == ".gml":
        ftype = _gml_type(rel)
        if ftype is not None and ftype not in SUPPORTED_TYPES:
            disc.skipped[ftype] = disc.skipped.get(ftype, 0) + 1
            return
        disc.sources.append(Source(display, "gml", ftype, path, member))
    elif suffix == ".obj":
        m = _OBJ_NAME_RE.search(name)
        if not m:
            raise CityModelError(
                f"{display}: OBJ file name does not say its feature type and CRS. PLATEAU OBJ exports are named "
                "'<mesh>_<type>_<epsg>.obj' (e.g. 53394525_bldg_6677.obj, X = north, Y = east in metres). "
                "Fix: rename the file accordingly.")
        ftype, epsg = m.group(1).lower(), int(m.group(2))
        if ftype not in SUPPORTED_TYPES:
            disc.skipped[ftype] = disc.skipped.get(ftype, 0) + 1
            return
        disc.sources.append(Source(display, "obj", ftype, path, member, obj_epsg=epsg))


def _add_zip(path: Path, disc: Discovery) -> None:
    try:
        with zipfile.ZipFile(path) as zf:
            names = [i.filename for i in zf.infolist() if not i.is_dir()]
    except zipfile.BadZipFile as e:
        raise CityModelError(f"{path}: not a readable zip archive ({e}). Fix: download the archive again.") from e
    for member in names:
        if "__MACOSX/" in member:
            continue
        _classify(member, f"{path}!{member}", path, member, disc)


def _add_path(p: Path, disc: Discovery) -> None:
    if not p.exists():
        raise CityModelError(f"{p}: no such file or folder. Fix: pass a .gml/.obj file, a folder of PLATEAU data "
                             "(e.g. the unpacked 'udx' folder) or the PLATEAU .zip you downloaded.")
    if p.is_dir():
        for f in sorted(p.rglob("*")):
            if f.is_file():
                if f.suffix.lower() == ".zip":
                    disc.seen[".zip"] += 1
                    _add_zip(f, disc)
                else:
                    _classify(str(f.relative_to(p)), str(f), f, None, disc)
    elif p.suffix.lower() == ".zip":
        _add_zip(p, disc)
    else:
        before = len(disc.sources)
        _classify(p.name, str(p), p, None, disc)
        if len(disc.sources) == before and p.suffix.lower() not in (".gml", ".obj"):
            raise CityModelError(f"{p}: unsupported file type {p.suffix or '(none)'!r}. Fix: pass CityGML (.gml), "
                                 "PLATEAU OBJ (*_<type>_6677.obj), a folder or a .zip of them.")


def _sort_key(s: Source) -> tuple[str, str]:
    return (s.name, s.display)


def discover(inputs: str | Path | Sequence[str | Path]) -> Discovery:
    """Resolve the inputs into sorted, de-duplicated sources; raise CityModelError if there is nothing to read."""
    if isinstance(inputs, (str, Path)):
        items = [inputs]
    else:
        items = list(inputs)
    if not items:
        raise CityModelError("no input given. Fix: pass a .gml/.obj file, a folder or a PLATEAU .zip.")
    disc = Discovery(sources=[], skipped={}, seen=Counter())
    for item in items:
        _add_path(Path(item).expanduser(), disc)
    unique: dict[tuple[str, str | None], Source] = {}
    for s in disc.sources:
        key = (str(s.path.resolve()), s.member)
        unique.setdefault(key, s)
    disc.sources = sorted(unique.values(), key=_sort_key)
    if not disc.sources:
        found = ", ".join(f"{n} x {suf}" for suf, n in sorted(disc.seen.items())) or "no files at all"
        skipped = (f"; skipped unsupported PLATEAU types: {dict(sorted(disc.skipped.items()))}"
                   if disc.skipped else "")
        where = ", ".join(str(i) for i in items)
        raise CityModelError(
            f"{where}: no supported city-model files found (found: {found}{skipped}). Supported: CityGML "
            f"*.gml of types {sorted(SUPPORTED_TYPES)} (PLATEAU 'udx/<type>/' layout), PLATEAU OBJ "
            "'*_<type>_6677.obj', or a .zip holding them. Fix: point --input at the unpacked PLATEAU data or its .zip.")
    return disc
