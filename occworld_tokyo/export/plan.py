"""Which sessions an export can carry, and what it reports about the rest.

Both formats hold the Occ3D slab (200 x 200 x 16 voxels of 0.4 m, -1.0..5.4 m above the ground), so:
- sessions on the default grid (1.25 m levels) are not carried: a 1.25 m level cannot be cut into 0.4 m ones;
  regenerate them with `generate --grid occ3d` (voxelized from the geometry at 0.4 m);
- drone sessions are not carried: the ego flies tens of metres above the slab's top, which holds the street
  far below it, not the drone's surroundings;
- scenes shorter than a released model's window (10 frames for the VQ-VAE config, 16 for the world model) are
  carried and reported.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from occworld_tokyo.dataset.sessions import DataError
from occworld_tokyo.export.source import SourceSession, open_session
from occworld_tokyo.export.writing import ExportError, check_new, finish, staging_dir
from occworld_tokyo.grid import OCC3D_GRID
from occworld_tokyo.sessions import layout

WINDOWS = {"VQ-VAE (10 frames)": 10, "world model (16 frames)": 16}


@dataclass
class ExportReport:
    out: Path
    fmt: str
    scenes: int = 0
    frames: int = 0
    not_carried: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"{self.fmt}: {self.scenes} scene(s), {self.frames} frame(s) -> {self.out}"]
        lines += [f"not carried: {t}" for t in self.not_carried]
        lines += [f"note: {t}" for t in self.notes]
        return "\n".join(lines)


def plan_export(sessions_dir: Path, report: ExportReport) -> list[SourceSession]:
    root = Path(sessions_dir)
    paths = layout.find_sessions(root)
    if not paths:
        raise ExportError(f"SESSIONS_DIR {root} holds no finished session (a folder with a meta.json); generate "
                          "some first: occworld-tokyo generate --grid occ3d --agent rover --output " + str(root))
    carried = []
    for path in paths:
        try:
            s = open_session(path)
        except (DataError, OSError, ValueError, KeyError) as exc:
            report.not_carried.append(f"{path.name}: unreadable ({exc})")
            continue
        if s.info.grid != OCC3D_GRID:
            g = s.info.grid
            report.not_carried.append(
                f"{s.name}: grid {g.shape} at {g.voxel_size} m, z {g.z_range} m; the format needs the Occ3D slab "
                "(200x200x16 at 0.4 m, z -1.0..5.4 m), which cannot be resampled from 1.25 m levels: regenerate "
                "it with `occworld-tokyo generate --grid occ3d`")
            continue
        if s.info.agent_type == "drone":
            h = float(np.median(s.height_above_ground()))
            report.not_carried.append(f"{s.name}: a drone flying {h:.0f} m above the ground (median), far above "
                                      f"the slab's top ({OCC3D_GRID.z_range[1]} m)")
            continue
        short = [name for name, n in WINDOWS.items() if s.n < n]
        if short:
            report.notes.append(f"{s.name}: {s.n} frames, shorter than the window of the released "
                                f"{' and '.join(short)}")
        if not s.info.has_masks:
            report.notes.append(f"{s.name}: generated without sensors: masks written as all-visible, no camera")
        carried.append(s)
    return carried


def run_export(sessions_dir: Path, out: Path, fmt: str, write, progress: bool = True) -> ExportReport:
    """The driver both formats share: refuse an existing `out`, plan what can be carried (nothing planned: nothing
    written), `write(sessions, tmp, report, progress)` into the staging folder, then rename it to `out`; any
    failure removes the staging folder and leaves the source untouched."""
    out = Path(out)
    report = ExportReport(out=out, fmt=fmt)
    check_new(out)
    sessions = plan_export(sessions_dir, report)
    if not sessions:
        return report
    tmp = staging_dir(out)
    try:
        write(sessions, tmp, report, progress)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finish(tmp, out)
    return report
