"""Coverage: which content of the input the written frames show, and plain warnings for what they missed.

Per session (meta.json `coverage`, written by generation, recomputed and compared by `validate`): for every
static label (building ... sidewalk; labels.py), the number of frames whose occupancy holds at least one voxel of
an *input object* of that label, and the number of such voxels over all frames. Input objects are the voxels
with an instance id > 0: the ground estimated where the data has no dem (terrain, instance 0) and the moving
agents (their own labels) are not input content.

Per run (`coverage_report`): for every content kind the (allowed part of the) input holds, the frames of the
run's sessions that show it. A kind shown in no frame, or in far fewer than expected (under LOW_SHARE of the
frames of the sessions whose area held it, over at least LOW_MIN_FRAMES such frames), is a WARNING naming the
kind, its input file(s) and a fix that reaches it (`--region` with its mesh tiles, more sessions or frames,
another agent type); `generate --strict` makes those warnings an error (exit 2) after the sessions are written,
which are kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from occworld_tokyo import labels

STATIC_KINDS: tuple[int, ...] = tuple(l.id for l in labels.LABELS if l.id != labels.FREE and not l.dynamic)
LOW_SHARE = 0.05  # a kind shown in fewer than this share of the frames of the sessions whose area held it ...
LOW_MIN_FRAMES = 20  # ... over at least this many such frames, is "far less than expected"
COUNTED = "frames (and voxels) holding input objects of each label: instance id > 0, so neither the ground " \
          "estimated where there is no dem nor moving agents"


class SessionCoverage:
    """Accumulates, frame by frame, the frames and voxels of input objects per label (module docstring)."""

    def __init__(self) -> None:
        self.frames = np.zeros(labels.NUM_CLASSES, dtype=np.int64)
        self.voxels = np.zeros(labels.NUM_CLASSES, dtype=np.int64)
        self.n_frames = 0

    def add(self, occupancy: np.ndarray, instances: np.ndarray) -> None:
        """One frame: occupancy (uint8 label ids) and instances (int32) of the same grid."""
        counts = np.bincount(occupancy[instances > 0], minlength=labels.NUM_CLASSES)[:labels.NUM_CLASSES]
        self.frames += counts > 0
        self.voxels += counts
        self.n_frames += 1

    def to_meta(self) -> dict:
        """meta.json `coverage`: {'counted': words, 'frames_with': {label: frames}, 'voxels': {label: voxels}}."""
        names = labels.LABEL_NAMES
        return {"counted": COUNTED,
                "frames_with": {names[k]: int(self.frames[k]) for k in STATIC_KINDS},
                "voxels": {names[k]: int(self.voxels[k]) for k in STATIC_KINDS}}


def coverage_meta_problem(coverage, n_frames: int) -> str | None:
    """What is wrong with a meta.json `coverage` value, naming the field; None when it is well formed."""
    if not isinstance(coverage, dict):
        return "field 'coverage' must be an object"
    for key, top in (("frames_with", n_frames), ("voxels", None)):
        table = coverage.get(key)
        if not isinstance(table, dict):
            return f"field 'coverage.{key}' must be an object of label name -> count"
        for name, v in table.items():
            if name not in labels.LABEL_NAMES:
                return f"field 'coverage.{key}' names {name!r}, which is not a label"
            if isinstance(v, bool) or not isinstance(v, int) or v < 0 or (top is not None and v > top):
                limit = f"0..{top}" if top is not None else ">= 0"
                return f"field 'coverage.{key}.{name}' = {v!r} must be a whole number {limit}"
    return None


@dataclass
class InputKind:
    """One content kind of the input: its objects, the files and level-3 mesh tiles holding them."""

    label: int
    objects: int = 0
    files: set[str] = field(default_factory=set)
    tiles: set[str] = field(default_factory=set)

    def where(self) -> str:
        files = sorted(self.files)
        shown = ", ".join(files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
        return f"{self.objects} object(s) in {shown}"


def kinds_of_index(index, allowed: dict[int, list[str]]) -> dict[int, InputKind]:
    """The content kinds of the tiles `allowed` (place id -> mesh codes) of a CityIndex."""
    out: dict[int, InputKind] = {}
    for place in index.places:
        codes = set(allowed.get(place.id, []))
        for t in place.tiles:
            if t.code not in codes:
                continue
            for label, n in t.kinds:
                if n > 0 and label in STATIC_KINDS:
                    k = out.setdefault(label, InputKind(label))
                    k.objects += n
                    k.files.add(t.display)
                    k.tiles.add(t.code)
    return out


def kinds_of_mesh(mesh) -> dict[int, InputKind]:
    """The content kinds of one CityMesh (library use: generate_sessions(mesh=...))."""
    files = {str(f) for f in mesh.source_files} or {"the given mesh"}
    return {label: InputKind(label, n, set(files)) for label, n in mesh.object_counts().items()
            if n > 0 and label in STATIC_KINDS}


@dataclass
class CoverageReport:
    lines: list[str]  # the table: one line per kind
    warnings: list[str]  # 'WARNING: ...' lines, one per kind missed or nearly missed
    partial: bool = False  # some sessions of the run are not written yet (other shards): warnings are provisional

    def strict_error(self, output) -> str:
        """The one line `--strict` ends with."""
        what = "; ".join(w.removeprefix("WARNING: ") for w in self.warnings)
        return (f"--strict: the sessions miss content of the input: {what}. The sessions written are kept in "
                f"{output}; write the new ones to another --output, or drop --strict to accept them")


def coverage_report(kinds: dict[int, InputKind], metas: list[dict], agents: list[str], *,
                    partial: bool = False) -> CoverageReport:
    """The run's coverage (module docstring) from the meta.json of its sessions; `agents`: the agent types the
    run plans (its --agent), for the advice."""
    names = labels.LABEL_NAMES
    total = sum(int(m.get("n_frames", 0)) for m in metas)
    lines, warnings = [], []
    scope = " (sessions written so far; the other shards' come later)" if partial else ""
    for label in sorted(kinds):
        kind = kinds[label]
        name = names[label]
        shown = sum(int(m.get("coverage", {}).get("frames_with", {}).get(name, 0)) for m in metas)
        voxels = sum(int(m.get("coverage", {}).get("voxels", {}).get(name, 0)) for m in metas)
        held = [m for m in metas if int((m.get("city", {}).get("objects") or {}).get(name, 0)) > 0]
        held_frames = sum(int(m.get("n_frames", 0)) for m in held)
        lines.append(f"coverage: {name:<14} in {shown:>6} of {total} frames ({voxels} voxels); input: {kind.where()}")
        tiles = ",".join(sorted(kind.tiles)[:8])
        region = f"--region {tiles} (the mesh tiles holding it)" if tiles else "--region over it"
        other = [a for a in ("drone", "rover") if a not in agents]
        agent_fix = f", --agent {other[0]}" if other else ""
        if shown == 0 and not held:
            warnings.append(f"WARNING: {name} ({kind.where()}) is in 0 of {total} frames{scope}: no session's area "
                            f"reached it. Fix: {region}, or more --sessions")
        elif shown == 0:
            warnings.append(f"WARNING: {name} ({kind.where()}) is in 0 of {total} frames{scope}: {len(held)} "
                            f"session area(s) held it but no trajectory came near. Fix: more --frames or "
                            f"--sessions{agent_fix}, or {region}")
        elif held_frames >= LOW_MIN_FRAMES and shown < LOW_SHARE * held_frames:
            warnings.append(f"WARNING: {name} ({kind.where()}) is in only {shown} of the {held_frames} frames of "
                            f"the {len(held)} session(s) whose area held it{scope}. Fix: more --frames or "
                            f"--sessions{agent_fix}, or {region}")
    return CoverageReport(lines, warnings, partial)
