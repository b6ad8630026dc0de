"""Input discovery: turn files, folders and PLATEAU .zip archives into a sorted list of readable sources.

A source is one CityGML (.gml) or OBJ (.obj) file, on disk or a member of a zip archive (read from the
archive directly, never extracted to disk). The PLATEAU feature type (`bldg`, `dem`, ...) comes from the
file name `<mesh>_<type>_<crs>_..._op.gml` (or the `udx/<type>/` folder); the order of sources is
sorted by file name, then by full path, so the same inputs always give the same instance ids (and a zip
of a folder gives the same order as the folder itself).

Hostile inputs are refused when they are found, before a byte of them is read: special files (a FIFO, a device or
a socket named `.gml` would block or never end), zip members that are encrypted, use a compression method Python
cannot read, declare more than `MAX_SOURCE_BYTES`, or expand more than `MAX_ZIP_RATIO` times (a zip bomb); zip
members are streamed, never held whole in memory, and an OBJ file (read whole) must fit in the available memory.
"""

from __future__ import annotations

import re
import stat
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
MAX_SOURCE_BYTES = 8 * 2 ** 30  # one CityGML / OBJ file; PLATEAU's largest (dem, LOD2 bldg) are well below 2 GB
MAX_ZIP_RATIO = 200  # uncompressed / compressed size of a zip member; PLATEAU CityGML deflates about 5-20 times
_ZIP_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate", zipfile.ZIP_BZIP2: "bzip2",
                zipfile.ZIP_LZMA: "lzma"}
OBJ_MEMORY_FACTOR = 12  # peak bytes of memory per byte of an OBJ file while it is read (text, numbers, faces)


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
        """A binary stream of the file's bytes (caller closes it); a zip member is decompressed as it is read."""
        if self.member is None:
            return open(self.path, "rb")
        zf = zipfile.ZipFile(self.path)
        try:
            return zf.open(self.member)  # keeps the archive's file open until the stream is closed
        finally:
            zf.close()

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


def _check_member(path: Path, info: zipfile.ZipInfo) -> None:
    """Refuse a member that cannot or must not be read (module docstring), naming it and the fix."""
    where = f"{path}!{info.filename}"
    if info.flag_bits & 0x1:
        raise CityModelError(f"{where}: the member is encrypted; nothing was read. Fix: unpack the archive with its "
                             "password and pass the unpacked udx/ folder as --input")
    if info.compress_type not in _ZIP_METHODS:
        raise CityModelError(f"{where}: compression method {info.compress_type} cannot be read (readable: "
                             f"{', '.join(_ZIP_METHODS.values())}). Fix: unpack the archive with another tool and "
                             "pass the unpacked folder as --input")
    if info.file_size > MAX_SOURCE_BYTES:
        raise CityModelError(f"{where}: declares {info.file_size / 1e9:.3g} GB uncompressed, more than a city-model "
                             f"file holds ({MAX_SOURCE_BYTES / 1e9:.3g} GB); nothing was read. Fix: check the archive "
                             "(download it again from the PLATEAU portal)")
    if info.file_size > 2 ** 20 and info.file_size > MAX_ZIP_RATIO * max(info.compress_size, 1):
        raise CityModelError(f"{where}: expands {info.file_size / max(info.compress_size, 1):.0f} times "
                             f"({info.compress_size} bytes -> {info.file_size / 1e9:.3g} GB), more than city-model "
                             f"data ever does ({MAX_ZIP_RATIO} times): a zip bomb or a damaged archive; nothing was "
                             "read. Fix: download the archive again from the PLATEAU portal")


def _regular_file(p: Path, what: str) -> None:
    """Refuse a FIFO, device, socket (or anything but a regular file) before it is opened."""
    try:
        mode = p.stat().st_mode
    except OSError as exc:
        raise CityModelError(f"{p}: cannot be read ({exc.strerror}). Fix: check the path and its permissions") from None
    if not stat.S_ISREG(mode):
        kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or
                stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
        raise CityModelError(f"{p}: is {kind}, not a {what}; reading it could block forever. Fix: pass the "
                             "PLATEAU files themselves (a .gml/.obj file, a udx/ folder or the .zip)")


def _add_zip(path: Path, disc: Discovery) -> None:
    _regular_file(path, "zip archive")
    try:
        with zipfile.ZipFile(path) as zf:
            infos = [i for i in zf.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise CityModelError(f"{path}: not a readable zip archive ({e}). Fix: download the archive again.") from e
    for info in infos:
        member = info.filename
        if "__MACOSX/" in member:
            continue
        if Path(member).suffix.lower() in (".gml", ".obj"):
            _check_member(path, info)
        _classify(member, f"{path}!{member}", path, member, disc)


def _add_path(p: Path, disc: Discovery) -> None:
    if not p.exists():
        raise CityModelError(f"{p}: no such file or folder. Fix: pass a .gml/.obj file, a folder of PLATEAU data "
                             "(e.g. the unpacked 'udx' folder) or the PLATEAU .zip you downloaded.")
    if p.is_dir():
        for f in sorted(p.rglob("*")):
            if f.suffix.lower() in (".gml", ".obj", ".zip") and not f.is_dir():
                _regular_file(f, "city-model file")  # a FIFO or device in the folder is refused, never opened
            if f.is_file():
                if f.suffix.lower() == ".zip":
                    disc.seen[".zip"] += 1
                    _add_zip(f, disc)
                else:
                    _classify(str(f.relative_to(p)), str(f), f, None, disc)
    elif p.suffix.lower() == ".zip":
        _add_zip(p, disc)
    else:
        _regular_file(p, "city-model file")
        before = len(disc.sources)
        _classify(p.name, str(p), p, None, disc)
        if len(disc.sources) == before and p.suffix.lower() not in (".gml", ".obj"):
            raise CityModelError(f"{p}: unsupported file type {p.suffix or '(none)'!r}. Fix: pass CityGML (.gml), "
                                 "PLATEAU OBJ (*_<type>_6677.obj), a folder or a .zip of them.")


def _sort_key(s: Source) -> tuple[str, str]:
    return (s.name, s.display)


def _check_obj_memory(sources: list[Source]) -> None:
    """An OBJ file is read whole: refuse, before reading any, one that cannot fit in the available memory."""
    from occworld_tokyo.memory import available_bytes

    objs = [s for s in sources if s.kind == "obj"]
    have = available_bytes() if objs else None
    if have is None:
        return
    for s in objs:
        need = s.size() * OBJ_MEMORY_FACTOR
        if need > have:
            raise CityModelError(f"{s.display}: reading this {s.size() / 1e9:.3g} GB OBJ file needs about "
                                 f"{need / 1e9:.3g} GB of memory but only {have / 1e9:.3g} GB is available; nothing "
                                 "was read. Fix: use the CityGML (.gml) of the same area, which is read as a stream, "
                                 "or a machine with more memory")


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
    _check_obj_memory(disc.sources)
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
