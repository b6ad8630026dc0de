"""The flat info list that I2-World reads (lzzzzzm/II-World mmdet3d/datasets/nuscenes_world_dataset.py, and the
layout of its tools/data_converter/nuscenes_converter.py), next to the OccWorld / DOME / OccSora pickle of dicts.

I2-World loads `data['infos']` as ONE list sorted by `timestamp`, reads `data['metadata']['version']`, and finds
the frames of a scene by their links: frame k + 1 follows frame k when its `prev` is frame k's `token`; a frame
whose `prev` is '' starts a new sequence. `occ_path.split('/')[-2]` is its scene name and
`occ_path + '/labels.npz'` its occupancy, opened as written (relative to the directory I2-World runs in).

Timestamps (microseconds) are on the sessions' synthetic recording clock: a session named
`<agent>_YYYYMMDD_HHMMSS[_k]` starts at that time (UTC), its frame i at start + i / rate. Sorting by timestamp
must keep every scene contiguous, so scenes whose clocks overlap (sessions of different runs in one folder) or
whose names carry no clock are laid end to end after the others, each starting 1 s after the latest end so far,
and reported.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

FLAT_INFO_FILE = "occworld_tokyo_infos_flat.pkl"
GAP_US = 1_000_000  # between scenes moved onto the timeline
_CLOCK = re.compile(r"_(\d{8}_\d{6})(?:_\d+)?$")


def clock_start_us(scene: str) -> int | None:
    """Microseconds since 1970 (UTC) of a session name's synthetic clock, or None when the name has none."""
    m = _CLOCK.search(scene)
    if not m:
        return None
    start = datetime.strptime(m.group(1), "%Y%m%d_%H%M%S").replace(tzinfo=timezone.utc)
    return int(round(start.timestamp() * 1e6))


def scene_starts(durations_us: dict[str, int]) -> tuple[dict[str, int], list[str]]:
    """Scene name -> (its last frame's time - its first's, µs) => (scene -> start µs, notes), such that the scenes'
    [start, start + duration] intervals do not overlap (module docstring)."""
    starts: dict[str, int] = {}
    notes: list[str] = []
    taken: list[tuple[int, int]] = []
    later: list[str] = []
    for name in sorted(durations_us, key=lambda n: (clock_start_us(n) is None, clock_start_us(n) or 0, n)):
        t0 = clock_start_us(name)
        span = (t0, t0 + durations_us[name]) if t0 is not None else None
        if span is None or any(span[0] <= b and a <= span[1] for a, b in taken):
            later.append(name)
            continue
        starts[name] = t0
        taken.append(span)
    end = max((b for _, b in taken), default=0)
    for name in later:
        starts[name] = end + GAP_US
        end = starts[name] + durations_us[name]
        notes.append(f"{name}: timestamps start at {starts[name]} us, after the other scenes, because its name's "
                     "clock overlaps another scene's or is missing (I2-World orders frames by timestamp)")
    return starts, notes


def flat_list(infos: dict[str, list[dict]]) -> list[dict]:
    """The per-scene frame dicts as one list in timestamp order; checks what I2-World relies on (each scene
    contiguous and in frame order, `prev` linking consecutive frames, '' at each scene's first frame)."""
    flat = sorted((info for scene in infos.values() for info in scene), key=lambda e: e["timestamp"])
    for k, info in enumerate(flat):
        expect = flat[k - 1]["token"] if k and info["frame_idx"] > 0 else ""
        if info["prev"] != expect or (k and info["frame_idx"] > 0 and flat[k - 1]["scene_name"] != info["scene_name"]):
            raise ValueError(f"frame {info['token']}: the timestamp order breaks its scene's sequence (prev "
                             f"{info['prev']!r}, expected {expect!r}); scene timestamps must not overlap")
    return flat
