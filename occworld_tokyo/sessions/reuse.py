"""Re-runs into a folder of finished sessions: a session is reused (skipped) only when its meta.json says it was made
with the settings, city and data revision this run would use; anything else stops the run before it writes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from occworld_tokyo.config import get_dotted
from occworld_tokyo.grid import grid_named
from occworld_tokyo.sessions import layout
from occworld_tokyo.sessions.layout import GenerationError

if TYPE_CHECKING:
    from occworld_tokyo.sessions.generate import GenerationSpec

DATA_REVISION = 5
"""Revision of the generated data, written to meta.json `generator.revision`. Bump it whenever the same spec and
city produce different data (e.g. a traffic model change), so that re-runs into a folder of older sessions stop
instead of silently mixing them. 1 = sessions without the field; 2 = signalled junctions; 3 = city read through the tile cache, region
worlds and plan areas sampled over the input (issue 10); 4 = trajectories start (and drone waypoints, survey lanes,
low orbits and rover legs head) near structures, so that sparse areas show buildings; 5 = tiles drawn by an equal share
per content kind, plan areas of at least 200 m around small data, duplicate gml:ids counted once, meta.json
`coverage` (issue 21, "silent empty output")."""

SAMPLE_DISTRICT = "<built-in sample district>"  # meta.json city.inputs when no --input is given
REUSE_FIX = "write to a new output folder, or delete those sessions to regenerate them"


OUTPUT_FIELDS = {  # GenerationSpec field -> the meta.json keys that record it (compared on re-runs)
    "frames": ("n_frames",),
    "agent": ("agent_type",),
    "seed": ("seed",),
    "rate_hz": ("rate_hz",),
    "sensors": ("sensors",),
    "jpeg_quality": ("generator.settings.jpeg_quality",),
    "density": ("traffic.density_per_km2.vehicles", "traffic.density_per_km2.pedestrians",
                "traffic.density_per_km2.drones"),
    "grid": ("grid.voxel_size", "grid.z_range"),
    "region_size": ("generator.settings.region_size_m",),
    "region": ("generator.settings.region",),
}
NOT_OUTPUT_FIELDS = {  # GenerationSpec fields that change no byte of a session, and why
    "sessions": "a session's data depends on its index, never on how many sessions the run has",
    "start_time": "it changes only the names, and a session under another name is never reused",
    "shard": "shards split the sessions of one run; each session is the same whichever shard writes it",
}
RECORDED_BEFORE = {"generator.settings.jpeg_quality": 90}  # what sessions without the key were made with (the
# only value the commands ever used); region settings were not recorded before: unknown, so those re-runs stop


def recorded_generator_settings(spec: GenerationSpec) -> dict[str, object]:
    """meta.json `generator.settings`: the settings that change the data and appear nowhere else in meta.json."""
    return {"region_size_m": float(spec.region_size), "region": spec.region, "jpeg_quality": int(spec.jpeg_quality)}


def requested_settings(spec: GenerationSpec, index: int, agent: str, inputs: list[str]) -> dict[str, object]:
    """What this run would record in session `index`'s meta.json, for the fields that decide its data."""
    d = spec.density
    settings = recorded_generator_settings(spec)
    return {
        "agent_type": agent,
        "n_frames": spec.frames,
        "rate_hz": spec.rate_hz,
        "seed": spec.seed,
        "session_index": index,
        "generator.revision": DATA_REVISION,
        "generator.settings.region_size_m": settings["region_size_m"],
        "generator.settings.region": settings["region"],
        "generator.settings.jpeg_quality": settings["jpeg_quality"],
        "sensors": spec.sensors,
        "traffic.density_per_km2.vehicles": d.vehicles_per_km2,
        "traffic.density_per_km2.pedestrians": d.pedestrians_per_km2,
        "traffic.density_per_km2.drones": d.drones_per_km2,
        "city.inputs": inputs,
        "grid.voxel_size": list(grid_named(spec.grid).voxel_size),
        "grid.z_range": list(grid_named(spec.grid).z_range),
    }


def recorded_settings(meta: dict) -> dict[str, object]:
    """The fields of `requested_settings` as an existing meta.json records them (None where missing; sessions
    written before `DATA_REVISION` existed are revision 1; RECORDED_BEFORE for keys added later)."""
    out = {k: get_dotted(meta, k) for k in ("agent_type", "n_frames", "rate_hz", "seed", "session_index",
                               "traffic.density_per_km2.vehicles", "traffic.density_per_km2.pedestrians",
                               "traffic.density_per_km2.drones", "city.inputs", "grid.voxel_size",
                               "grid.z_range")}
    for key in ("generator.settings.region_size_m", "generator.settings.region", "generator.settings.jpeg_quality"):
        settings = get_dotted(meta, "generator.settings")
        name = key.rsplit(".", 1)[1]
        if isinstance(settings, dict) and name in settings:
            out[key] = settings[name]
        else:
            out[key] = RECORDED_BEFORE.get(key, "(not recorded)")
    out["generator.revision"] = get_dotted(meta, "generator.revision", 1)
    out["sensors"] = get_dotted(meta, "sensors") is not None
    return out


def _same_inputs(a: object, b: object) -> bool:
    """Same city inputs: equal as written, or naming the same paths (relative ones resolved here)."""
    if a == b:
        return True
    if not (isinstance(a, list) and isinstance(b, list) and len(a) == len(b)):
        return False
    return all(x == y or (isinstance(x, str) and Path(x).resolve() == Path(y).resolve()) for x, y in zip(a, b))


def settings_differences(existing: dict[str, object], requested: dict[str, object]) -> list[str]:
    """'field: existing X, requested Y' for every field of `requested` that `existing` records otherwise."""
    out = []
    for key, want in requested.items():
        have = existing.get(key)
        same = _same_inputs(have, want) if key == "city.inputs" else have == want
        if not same:
            out.append(f"{key}: existing {json.dumps(have)}, requested {json.dumps(want)}")
    return out


def read_session_meta(session: Path) -> dict:
    """A finished session's meta.json; GenerationError naming the file when it cannot be read."""
    path = session / "meta.json"
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise GenerationError(_unreadable(path, f"{type(exc).__name__}: {exc}")) from exc
    if not isinstance(meta, dict):
        raise GenerationError(_unreadable(path, "not a JSON object"))
    return meta


def _unreadable(path: Path, why: str) -> str:
    return (f"cannot read {path} ({why}), so it is unknown how that session was made; nothing was written: "
            f"write to a new output folder, or delete {path.parent} to regenerate it")


def check_reusable(output: Path, jobs: list[tuple[int, str, str]], spec: GenerationSpec, inputs: list[str]) -> None:
    """Raise GenerationError, before anything is written, when a finished session of `jobs` in `output` was made
    with other settings, another city or another `DATA_REVISION` than this run would use."""
    problems = []
    for index, agent, name in jobs:
        session = output / name
        if not layout.is_session_dir(session):
            continue
        diffs = settings_differences(recorded_settings(read_session_meta(session)),
                                     requested_settings(spec, index, agent, inputs))
        if diffs:
            problems.append(f"  {session}: " + "; ".join(diffs))
    if problems:
        shown = problems[:5] + ([f"  ... and {len(problems) - 5} more"] if len(problems) > 5 else [])
        raise GenerationError(
            f"the output folder {output} already holds {len(problems)} session(s) under this run's names but made with "
            "other settings, city or generator revision; skipping them would mix two datasets, so nothing was "
            "written:\n"
            + "\n".join(shown) + f"\n{REUSE_FIX}")


def other_sessions(output: Path, spec: GenerationSpec) -> list[str]:
    """Finished sessions in `output` that this spec does not plan (any shard of it)."""
    planned = set(spec.names())
    return [p.name for p in layout.find_sessions(output) if p.name not in planned]
