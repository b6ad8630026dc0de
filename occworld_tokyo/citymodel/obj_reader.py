"""Reader of PLATEAU OBJ exports `<mesh>_<type>_<epsg>.obj` (JGD2011 plane rectangular, e.g. EPSG:6677).

Vertices are `v X Y Z` with X = north (m), Y = east (m), Z = height (m), as PLATEAU's 2020 OBJ exports
in EPSG:6677. The class comes from `<type>` in the file name. Objects: one per `o`/`g` group when the
file has groups (consecutive faces after an `o`/`g` line; a name used twice is one object); otherwise one
per connected set of faces (faces sharing a vertex position, welded at 1 mm). Faces with more than three
vertices are triangulated like CityGML polygons; texture/normal indices (`f 1/2/3`) are ignored.
"""

from __future__ import annotations

import re

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ..labels import PLATEAU_TYPE_TO_LABEL, TERRAIN, ROAD, RAILWAY, SIDEWALK, WATER
from .crs import PLANE_RECTANGULAR, SourceCRS
from .errors import CRSError, MalformedXMLError
from .geometry.polygons import PolygonSoup
from .mesh import Fill
from .parsed import ParsedFile
from .sources import Source

_SLASH_RE = re.compile(r"/[^\s]*")


def fill_for_label(label: int) -> Fill:
    """Fill of an OBJ object, from its class (OBJ has no solid/surface distinction)."""
    if label == TERRAIN:
        return Fill.TERRAIN
    if label in (ROAD, RAILWAY, SIDEWALK, WATER):
        return Fill.SURFACE
    return Fill.SOLID


def _parse_obj_text(text: str, where: str) -> tuple[np.ndarray, list[list[int]], list[tuple[int, str]]]:
    """(vertices (V, 3), faces as 0-based index lists, [(first face index, group name)])."""
    v_lines: list[str] = []
    faces: list[list[int]] = []
    groups: list[tuple[int, str]] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line or line[0] == "#":
            continue
        head, _, rest = line.partition(" ")
        if head == "v":
            v_lines.append(rest)
        elif head == "f":
            try:
                idx = [int(t) for t in _SLASH_RE.sub("", rest).split()]
            except ValueError as e:
                raise MalformedXMLError(f"{where}, line {lineno}: face {line.strip()!r} is not a list of vertex "
                                        "indices. Fix: re-export the OBJ.") from e
            n = len(v_lines)
            faces.append([i - 1 if i > 0 else n + i for i in idx])
        elif head in ("o", "g"):
            groups.append((len(faces), rest.strip() or f"group{len(groups)}"))
    verts = np.fromstring(" ".join(v_lines), sep=" ") if v_lines else np.zeros(0)
    if verts.size != 3 * len(v_lines):
        if len(v_lines) and verts.size % len(v_lines) == 0 and verts.size // len(v_lines) >= 3:
            verts = verts.reshape(len(v_lines), -1)[:, :3].ravel()  # v x y z w / v x y z r g b
        else:
            raise MalformedXMLError(f"{where}: some 'v' lines do not hold 3 numbers. Fix: re-export the OBJ.")
    return verts.reshape(-1, 3), faces, groups


def _face_objects(verts: np.ndarray, faces: list[list[int]], groups: list[tuple[int, str]],
                  name: str) -> tuple[np.ndarray, list[str]]:
    """Object index of each face, and the object names."""
    nf = len(faces)
    if groups:
        starts = [g[0] for g in groups]
        names = [g[1] for g in groups]
        face_group = np.searchsorted(np.array(starts), np.arange(nf), side="right") - 1
        obj_names: list[str] = []
        index: dict[str, int] = {}
        group_obj = []
        for nm in names:
            if nm not in index:
                index[nm] = len(obj_names)
                obj_names.append(nm)
            group_obj.append(index[nm])
        prefix_obj = len(obj_names)
        face_obj = np.where(face_group >= 0, np.asarray(group_obj + [0])[np.maximum(face_group, 0)], prefix_obj)
        if (face_group < 0).any():
            obj_names.append("ungrouped")
        return face_obj, [f"{name}:{n}" for n in obj_names]
    welded = np.unique(np.round(verts * 1000.0).astype(np.int64), axis=0, return_inverse=True)[1].ravel()
    a = np.concatenate([[welded[f[0]]] * (len(f) - 1) for f in faces])
    b = np.concatenate([[welded[i] for i in f[1:]] for f in faces])
    nv = int(welded.max()) + 1
    graph = coo_matrix((np.ones(len(a)), (a, b)), shape=(nv, nv))
    _, comp = connected_components(graph, directed=False)
    face_comp = comp[[welded[f[0]] for f in faces]]
    # number components by their first face
    _, first = np.unique(face_comp, return_index=True)
    order = np.argsort(first)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    face_obj = rank[np.searchsorted(np.unique(face_comp), face_comp)]
    return face_obj, [f"{name}:{k}" for k in range(len(order))]


def read_obj(source: Source) -> ParsedFile:
    """Read one PLATEAU OBJ file into a ParsedFile (native plane-rectangular coordinates)."""
    epsg = source.obj_epsg or 0
    if epsg not in PLANE_RECTANGULAR:
        raise CRSError(f"{source.display}: EPSG:{epsg} from the file name is not a JGD2011 plane rectangular zone "
                       "(EPSG:6669-6687). Fix: name the file '<mesh>_<type>_6677.obj' with its real zone code.")
    data = source.read_bytes()
    verts, faces, groups = _parse_obj_text(data.decode("utf-8", errors="replace"), source.display)
    label = PLATEAU_TYPE_TO_LABEL[source.feature_type or ""]
    fill = int(fill_for_label(label))
    faces = [f for f in faces if len(f) >= 3]
    out = ParsedFile(source.display, SourceCRS(epsg), None, [], [], [], n_bytes=len(data))  # type: ignore[arg-type]
    if not faces:
        out.soup = PolygonSoup(np.zeros((0, 3)), np.zeros(1, np.int64), np.zeros(1, np.int64), np.zeros(0, np.int64))
        return out
    if max(max(f) for f in faces) >= len(verts) or min(min(f) for f in faces) < 0:
        raise MalformedXMLError(f"{source.display}: a face refers to a vertex that does not exist. "
                                "Fix: re-export the OBJ.")
    face_obj, names = _face_objects(verts, faces, groups, source.name)
    lengths = np.array([len(f) for f in faces], dtype=np.int64)
    flat = np.concatenate([np.asarray(f, dtype=np.int64) for f in faces])
    ring_offsets = np.zeros(len(faces) + 1, dtype=np.int64)
    np.cumsum(lengths, out=ring_offsets[1:])
    out.soup = PolygonSoup(verts[flat].astype(np.float64), ring_offsets, np.arange(len(faces) + 1, dtype=np.int64),
                           face_obj.astype(np.int64))
    out.gml_ids = names
    out.labels = [label] * len(names)
    out.fills = [fill] * len(names)
    return out
