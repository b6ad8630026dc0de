"""Generate drone/rover sessions from a city model: the engine behind `scripts/plateau_to_occworld.py`.

city index (cached per mesh tile, occworld_tokyo.citymodel.index) -> per session: a plan area sampled over the
whole input (sessions/regions.py) -> its region voxel world (occworld_tokyo.world.region, built lazily, one per
process at a time) -> trajectory + moving agents (traffic) -> per frame: ego crop with the agents painted in (+
lidar, camera, masks, which see the agents too) -> files. Memory follows the region, not the city.
Sessions are independent: `workers` processes run them in parallel (each gets the run's context as its
arguments and keeps its own region world between sessions; no module state), `shard=(i, n)` keeps every n-th
session for cluster array jobs, and finished sessions are skipped on re-runs, but only when their meta.json
says they were made with this run's settings, city and `DATA_REVISION` (anything else stops the run before it
writes). A session whose drawn area cannot hold its trajectory is drawn again on another tile
(sessions/regions.py). Each session's random stream is seeded by (seed, session index), so output is byte-identical for a seed
whatever the worker count.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
from tqdm import tqdm

from occworld_tokyo import __version__, labels
from occworld_tokyo.agents import AgentStates, TrafficDensity, TrafficRecording
from occworld_tokyo.citymodel.mesh import CityMesh
from occworld_tokyo.grid import GridSpec, grid_named
from occworld_tokyo.sessions import layout, writer
from occworld_tokyo.sessions.coverage import (CoverageReport, SessionCoverage, coverage_report, kinds_of_index,
                                              kinds_of_mesh)
from occworld_tokyo.sessions.layout import GenerationError
from occworld_tokyo.sessions.regions import (DEFAULT_REGION_SIZE, MAX_REGION_SIZE, MIN_PLAN_SIDE, MIN_REGION_SIZE,
                                             SessionArea, session_area)
from occworld_tokyo.sessions.reuse import (DATA_REVISION, SAMPLE_DISTRICT, check_reusable, other_sessions,
                                           recorded_generator_settings)
from occworld_tokyo.trajectories.curves import PlanningError
from occworld_tokyo.trajectories.trajectory import Trajectory


def _whole(value, flag: str, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
        raise GenerationError(f"{flag} must be a whole number {lo}..{hi} (got {value!r})")


def _number(value, flag: str, lo: float, hi: float, unit: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not lo <= value <= hi:
        raise GenerationError(f"{flag} must be a number {lo:g}..{hi:g}{unit} (got {value!r})")


@dataclass(frozen=True)
class GenerationSpec:
    frames: int = 200
    sessions: int = 5
    agent: str = "mixed"  # drone | rover | mixed (alternating, drone first)
    seed: int = 0
    rate_hz: float = 2.0
    sensors: bool = True  # lidar, camera and visibility masks
    start_time: str = "20240101_120000"  # synthetic recording clock for the session names
    shard: tuple[int, int] = (0, 1)
    jpeg_quality: int = 90
    density: TrafficDensity = TrafficDensity()  # moving agents per km^2; TrafficDensity.none() = static city
    grid: str = "default"  # 'default' (200x200x121, 1.25 m levels) or 'occ3d' (200x200x16, 0.4 m; grid.py)
    region_size: float = DEFAULT_REGION_SIZE  # m: side of a session's plan area (sessions/regions.py)
    region: str | None = None  # --region: mesh codes or a lat/lon box restricting the plan areas

    def __post_init__(self) -> None:
        # the same ranges as the flags (sessions/command.py), for library callers; NaN and bools fail every check
        _whole(self.frames, "--frames", 1, 100_000)
        _whole(self.sessions, "--sessions", 1, 10_000)
        _whole(self.seed, "--seed", 0, 2 ** 63 - 1)
        if self.agent not in ("drone", "rover", "mixed"):
            raise GenerationError(f"--agent must be drone, rover or mixed (got {self.agent!r})")
        _number(self.rate_hz, "--rate", 0.1, 100.0, " Hz")
        _number(self.region_size, "--region-size", MIN_REGION_SIZE, MAX_REGION_SIZE, " m")
        if not (isinstance(self.shard, tuple) and len(self.shard) == 2):
            raise GenerationError(f"--shard must be i/n (got {self.shard!r})")
        i, n = self.shard
        _whole(n, "--shard's n", 1, 1_000_000)
        _whole(i, "--shard's i", 0, n - 1)
        if self.region is not None:
            from occworld_tokyo.citymodel.meshcode import parse_region

            try:
                parse_region(self.region)
            except ValueError as exc:
                raise GenerationError(str(exc)) from None
        try:
            grid_named(self.grid)
        except ValueError as exc:
            raise GenerationError(str(exc)) from exc
        try:
            datetime.strptime(self.start_time, "%Y%m%d_%H%M%S")
        except ValueError as exc:
            raise GenerationError(f"--start-time must look like 20240101_120000 (got {self.start_time!r})") from exc

    def agents(self) -> list[str]:
        if self.agent == "mixed":
            return [layout.AGENT_TYPES[i % 2] for i in range(self.sessions)]
        return [self.agent] * self.sessions

    def names(self) -> list[str]:
        start = datetime.strptime(self.start_time, "%Y%m%d_%H%M%S")
        return layout.planned_session_names(self.agents(), start, self.frames / self.rate_hz)


@dataclass
class GenerationReport:
    output: Path
    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    others: list[str] = field(default_factory=list)  # complete sessions in the folder that this run did not plan
    redrawn: list[str] = field(default_factory=list)  # sessions drawn again because their first area was too small
    frames_written: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)  # about the input: duplicates dropped, geometry problems, small data
    coverage: CoverageReport | None = None  # what content of the input the run's frames show (sessions/coverage.py)

    def summary(self) -> str:
        fps = self.frames_written / self.seconds if self.seconds > 0 else 0.0
        text = (f"{len(self.written)} session(s) written, {len(self.skipped)} already complete (skipped), "
                f"{self.frames_written} frames in {self.seconds:.1f} s ({fps:.2f} frames/s) -> {self.output}")
        for note in self.notes:
            text += f"\n{note}"
        for note in self.redrawn:
            text += f"\nnote: {note}"
        if self.others:
            shown = ", ".join(self.others[:3]) + (", ..." if len(self.others) > 3 else "")
            text += (f"\nnote: {self.output} holds {len(self.others)} other session(s) not from this run ({shown}): "
                     "training reads every session in the folder")
        if self.coverage is not None:
            text += "".join(f"\n{line}" for line in self.coverage.lines + self.coverage.warnings)
        return text


@dataclass
class _Context:
    """What every session needs (small and picklable in tiled mode): handed to each generation process as its
    argument (`_work`), never through a module global."""

    spec: GenerationSpec
    grid: GridSpec
    output: Path
    input_names: list[str]
    index: object | None = None  # CityIndex (tiled mode)
    allowed: dict | None = None  # place id -> allowed mesh codes (--region)
    # (mesh, world, crop world or None): one given world for every session (the library's mesh=/world=)
    whole: tuple | None = None
    progress: object | None = None  # multiprocessing.Value: frames done, shared with the workers


class _Worker:
    """One process's state: the context, its current region world and the sensors' ray caster for it."""

    def __init__(self, ctx: _Context) -> None:
        self.ctx = ctx
        self.regions = None
        self.caster_key = None
        self.caster = None
        self.sensor_mesh = None

    def area(self, index: int, exclude: tuple[tuple[int, str], ...] = ()) -> SessionArea | None:
        """Session `index`'s plan area, drawn among the tiles not in `exclude` (None: none left; one whole world
        has a single area, so it has nothing to draw again)."""
        if self.ctx.whole is not None:
            return None if exclude else SessionArea(0, tuple(self.ctx.whole[1].plan_bounds), "")
        return session_area(self.ctx.index, self.ctx.allowed, self.ctx.spec.seed, index, self.ctx.spec.region_size,
                            exclude)

    def world(self, area: SessionArea) -> tuple[CityMesh, object, object, CityMesh, dict]:
        """(voxelized mesh, world, crop world, sensors' mesh, city meta) of a session's area. The crop world is
        the world itself unless the grid's levels differ from the world's (world.region.crop_world_for)."""
        ctx = self.ctx
        if ctx.whole is not None:
            mesh, world, crop = ctx.whole
            return mesh, world, crop or world, mesh, _city_meta(mesh, ctx.input_names)
        from occworld_tokyo.world.region import RegionWorlds

        if self.regions is None:
            self.regions = RegionWorlds(ctx.index, ctx.grid)
        rw = self.regions.get(area.place, area.plan_area)
        meta = _city_meta(rw.mesh, ctx.input_names)
        meta["region"] = {"place": area.place, "plan_area_m": list(area.plan_area), "tile_drawn": area.tile,
                          "world_bounds_m": [round(v, 3) for v in rw.world.bounds_xy],
                          "places_in_input": len(ctx.index.places)}
        return rw.mesh, rw.world, rw.crop_world or rw.world, rw.sensor_mesh, meta

    def caster_for(self, key, mesh: CityMesh, world):
        """The Embree scene of the static city of this region (built once per region and process)."""
        from occworld_tokyo.sensors import RayCaster
        from occworld_tokyo.sensors.scene import sensor_mesh

        if self.caster_key != key:
            self.caster = self.sensor_mesh = None
            self.sensor_mesh = sensor_mesh(mesh, world)
            self.caster = RayCaster(self.sensor_mesh)
            self.caster_key = key
        return self.caster, self.sensor_mesh


def _work(ctx: _Context, jobs, results, parent_pid: int) -> None:
    """One generation process: its own _Worker (region world and ray caster, kept between its sessions) runs the
    sessions it takes from `jobs` until a None, and puts (job, result, None) on `results`, or (job, None,
    (exception, traceback text)) and stops at the first failure. ctx, jobs and results come as the process's
    arguments (inherited under fork, never pickled)."""
    from occworld_tokyo.locks import die_with_parent

    die_with_parent(parent_pid)  # a run killed with SIGKILL takes its workers with it (they hold its claim)
    worker = _Worker(ctx)
    for job in iter(jobs.get, None):
        try:
            results.put((job, _run_session(worker, job), None))
        except BaseException as exc:  # noqa: BLE001 - handed to the parent, which stops the run with it
            results.put((job, None, (exc, traceback.format_exc())))
            return


def _run_in_processes(ctx: _Context, todo: list, workers: int, ctx_mp, on_result, tick) -> None:
    """Run the sessions `todo` in `workers` processes (a shared job queue: each process takes the next session
    when it finishes one). on_result(result) for each finished session; tick() about 5 times a second (progress).
    The first failure stops every process and is raised here, with the worker's traceback as a note."""
    jobs, results = ctx_mp.Queue(), ctx_mp.Queue()
    for job in todo:
        jobs.put(job)
    procs = [ctx_mp.Process(target=_work, args=(ctx, jobs, results, os.getpid()), daemon=True)
             for _ in range(workers)]
    for _ in procs:
        jobs.put(None)
    for proc in procs:
        proc.start()
    try:
        for _ in range(len(todo)):
            while True:
                try:
                    job, result, failure = results.get(timeout=0.2)
                    break
                except queue.Empty:
                    tick()
                    dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
                    if dead or all(p.exitcode is not None for p in procs) and results.empty():
                        raise GenerationError(f"a session generation process stopped without a result (exit codes "
                                              f"{[p.exitcode for p in procs]}; a killed process is often out of "
                                              "memory: try fewer --workers). Sessions already written are kept "
                                              "(a re-run resumes)")
            if failure is not None:
                exc, text = failure
                note = f"in the generation process of session {job[2]}:\n{text}"
                if hasattr(exc, "add_note"):  # Python 3.11+
                    exc.add_note(note)
                    raise exc
                raise exc from RuntimeError(note)
            on_result(result)
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
            proc.join()


def _city_meta(mesh: CityMesh, inputs: list[str]) -> dict:
    names = {l.id: l.name for l in labels.LABELS}
    return {
        "inputs": inputs,
        "source_files": [Path(f).name for f in mesh.source_files],
        "origin": mesh.origin.to_dict() if mesh.origin else None,
        "objects": {names[k]: v for k, v in sorted(mesh.object_counts().items())},
        "triangles": mesh.n_triangles,
        "skipped": dict(mesh.skipped),
    }


def plan_trajectory(world, agent: str, frames: int, rate_hz: float, rng: np.random.Generator) -> Trajectory:
    from occworld_tokyo.trajectories import plan_drone, plan_rover

    planner = plan_drone if agent == "drone" else plan_rover
    return planner(world, frames, rate_hz=rate_hz, rng=rng)


EGO_CLEARANCE = {"drone": 3.0, "rover": 2.0}  # metres kept between the ego and any moving agent


def simulate_session_traffic(world, traj: Trajectory, spec: GenerationSpec, index: int) -> TrafficRecording:
    """The moving agents of one session: simulated over the trajectory's area plus a margin (the grid's
    half-diagonal and room to drive into view), with its own random stream, and without the agents that
    would ever come within `EGO_CLEARANCE` of the ego (removed for the whole session, so ids stay stable)."""
    from occworld_tokyo.agents import simulate_traffic

    margin = 80.0
    x, y = traj.position[:, 0], traj.position[:, 1]
    bx0, by0, bx1, by1 = world.bounds_xy
    region = (max(x.min() - margin, bx0), max(y.min() - margin, by0), min(x.max() + margin, bx1), min(y.max() + margin, by1))
    rec = simulate_traffic(world, len(traj), spec.rate_hz, np.random.default_rng([spec.seed, index, 1]),
                           spec.density, region=region)
    return drop_agents_near_ego(rec, traj, EGO_CLEARANCE.get(traj.agent_type, 2.0))


def drop_agents_near_ego(rec: TrafficRecording, traj: Trajectory, clearance: float) -> TrafficRecording:
    """Remove every agent whose box, grown by `clearance`, contains the ego position in any frame."""
    bad: set[int] = set()
    for i in range(len(rec)):
        st = rec.at(i)
        if not len(st):
            continue
        d = traj.position[i] - st.centers
        c, s = np.cos(st.yaws), np.sin(st.yaws)
        local = np.stack([c * d[:, 0] + s * d[:, 1], -s * d[:, 0] + c * d[:, 1], d[:, 2]], axis=1)
        inside = np.all(np.abs(local) <= st.sizes / 2 + clearance, axis=1)
        bad.update(st.ids[inside].tolist())
    if not bad:
        return rec
    frames = [st.select(~np.isin(st.ids, list(bad))) for st in rec.frames]
    return TrafficRecording(frames, rec.rate_hz, {**rec.info, "removed_near_ego": len(bad)})


def render_frame(ctx: _Context, traj: Trajectory, i: int, rng: np.random.Generator,
                 agents: AgentStates | None = None, *, world=None, caster=None,
                 static_mesh: CityMesh | None = None) -> writer.FrameData:
    """Frame i: the occupancy crop with the moving agents painted in and their annotation boxes, plus lidar,
    camera image and visibility masks (which see the agents too) when sensors are on."""
    from occworld_tokyo.agents import agent_mesh, annotations, paint_agents

    pos, quat = traj.position[i], traj.quat_xyzw[i]
    frame = world.ego_frame(float(pos[0]), float(pos[1]), float(traj.yaw[i]), ctx.grid)
    occ, inst = world.crop(frame, ctx.grid)
    agents = agents if agents is not None else AgentStates.empty()
    if len(agents):
        paint_agents(occ, inst, frame, agents, ctx.grid)
    data = writer.FrameData(occupancy=occ, instances=inst, ground_height=frame.ground_z,
                            annotations=annotations(agents, frame, ctx.grid, occupancy_instances=inst))
    if not ctx.spec.sensors:
        return data
    from occworld_tokyo.sensors import (RayCaster, camera_mask, default_camera, default_lidar, encode_jpeg,
                                        lidar_mask, render_camera, scan_lidar)

    # the sensors see the city plus the estimated ground where the data has no dem (_Worker.caster_for)
    mesh = static_mesh
    if len(agents):  # this frame's scene: the static city plus the agents' boxes (only theirs is built per frame)
        boxes = agent_mesh(agents)
        mesh = CityMesh.concatenate([static_mesh, boxes])
        caster = RayCaster.layered(caster, boxes)
    lidar_spec = default_lidar(traj.agent_type)
    scan = scan_lidar(caster, mesh, pos, quat, frame, lidar_spec, rng)
    cam_spec = default_camera(traj.agent_type)
    cam = render_camera(caster, mesh, pos, quat, cam_spec)
    data.lidar = scan.points
    data.mask_lidar = lidar_mask(scan.origin_ego, scan.points[:, :3], ctx.grid,
                                 miss_dirs_ego=scan.miss_dirs_ego, max_range=lidar_spec.max_range)
    data.mask_camera = camera_mask(cam.depth, pos, quat, frame, cam_spec, ctx.grid)
    data.image_jpeg = encode_jpeg(cam.rgb, ctx.spec.jpeg_quality)
    return data


def session_meta(ctx: _Context, index: int, name: str, traj: Trajectory, traffic: TrafficRecording,
                 city_meta: dict) -> dict:
    meta = {
        "name": name,
        "agent_type": traj.agent_type,
        "pattern": traj.pattern,
        "n_frames": len(traj),
        "rate_hz": ctx.spec.rate_hz,
        "seed": ctx.spec.seed,
        "session_index": index,
        "generator": {"name": "occworld_tokyo", "version": __version__, "revision": DATA_REVISION,
                      "settings": recorded_generator_settings(ctx.spec)},
        "city": city_meta,
        "frames": {
            "world": "city local frame: x east, y north, z up (metres above the source vertical datum)",
            "body": "x forward, y left, z up; orientation = body -> world quaternion (x, y, z, w)",
            "ego_grid": "yaw-only frame at the agent's x, y; z = 0 at ground_height (pose JSON)",
            "velocity": "linear (m/s) and angular (rad/s) both expressed in the world frame",
        },
        "grid": ctx.grid.to_dict(),
        "labels": labels.label_table(),
        "sensors": None,
        "traffic": {
            "density_per_km2": {"vehicles": ctx.spec.density.vehicles_per_km2,
                                "pedestrians": ctx.spec.density.pedestrians_per_km2,
                                "drones": ctx.spec.density.drones_per_km2},
            "agents": int(len(traffic.all_ids())),
            # plain facts only: the simulation's wall-clock time would break byte-identical output
            "info": {k: v for k, v in traffic.info.items() if isinstance(v, (int, float, str)) and k != "seconds"},
        },
    }
    if ctx.spec.sensors:
        from occworld_tokyo.sensors import default_camera, default_lidar

        meta["sensors"] = {
            "lidar": default_lidar(traj.agent_type).to_dict(),
            "camera": default_camera(traj.agent_type).to_dict(),
        }
    return meta


MAX_AREA_DRAWS = 8
"""Areas one session tries (the drawn one and up to 7 redraws on other tiles) before generation stops."""


def _where(area: SessionArea) -> str:
    x0, y0, x1, y1 = area.plan_area
    return (f"tile {area.tile}, " if area.tile else "") + f"plan area {x1 - x0:.0f} x {y1 - y0:.0f} m"


def _plan_somewhere(worker: _Worker, index: int, agent: str, name: str, rng: np.random.Generator):
    """Session `index`'s area, world and trajectory: the drawn area, or, where it cannot hold the trajectory, the
    next area drawn among the other tiles (sessions/regions.py). Returns (area, world tuple, trajectory, notes
    on the areas given up); GenerationError when MAX_AREA_DRAWS areas (or all tiles) failed."""
    ctx = worker.ctx
    tried: list[tuple[int, str]] = []
    notes: list[str] = []
    while True:
        area = worker.area(index, tuple(tried))
        if area is None or len(tried) >= MAX_AREA_DRAWS:
            other = "rover" if agent == "drone" else "drone"
            raise GenerationError(
                f"session {name} ({agent}): no area of the input can hold it ({'; '.join(notes)}). Sessions "
                f"already written are kept (a re-run resumes). Fix: --agent {other} (a {other} needs "
                f"{'open space in the air' if other == 'drone' else 'street space on the ground'} instead), or "
                f"--region where the data has more open space, or fewer --frames (a shorter route)")
        built = worker.world(area)
        try:
            return area, built, plan_trajectory(built[1], agent, ctx.spec.frames, ctx.spec.rate_hz, rng), notes
        except PlanningError as exc:
            notes.append(f"{_where(area)}: {exc}")
            tried.append((area.place, area.tile))


def _run_session(worker: _Worker, job: tuple[int, str, str]) -> tuple[str, int, list[str]]:
    index, agent, name = job
    ctx = worker.ctx
    rng = np.random.default_rng([ctx.spec.seed, index])
    area, (mesh, world, crop_world, sensor_src, city_meta), traj, given_up = _plan_somewhere(worker, index, agent,
                                                                                            name, rng)
    if given_up:
        city_meta["region"]["areas_given_up"] = given_up
    caster = static = None
    if ctx.spec.sensors:
        caster, static = worker.caster_for((area.place, area.plan_area), sensor_src, world)
    traffic = simulate_session_traffic(world, traj, ctx.spec, index)
    out_root = ctx.output
    tmp = writer.make_session_tmp(out_root, name, sensors=ctx.spec.sensors)
    coverage = SessionCoverage()
    for i in range(len(traj)):
        data = render_frame(ctx, traj, i, rng, traffic.at(i), world=crop_world, caster=caster, static_mesh=static)
        coverage.add(data.occupancy, data.instances)
        writer.write_frame(tmp, i, traj, data)
        if ctx.progress is not None:
            with ctx.progress.get_lock():
                ctx.progress.value += 1
    meta = session_meta(ctx, index, name, traj, traffic, city_meta)
    meta["coverage"] = coverage.to_meta()
    writer.finish_session(tmp, out_root / name, meta)
    notes = [f"{name}: {len(given_up)} area(s) could not hold it ({'; '.join(given_up)}); drawn again: "
             f"{_where(area)}"] if given_up else []
    return name, len(traj), notes


BYTES_PER_FRAME = {True: 2_500_000, False: 400_000}
"""Upper estimates of one frame on disk, with and without sensors (measured 1.8-1.9 MB per frame with all sensors
on the sample cities, ~0.23 MB occupancy + instances, ~0.36 MB with masks: docs/benchmarks.md); used to refuse a
run before it writes when the disk lacks room."""


REGION_BYTES_PER_KM2 = 1.6e9
"""Voxel memory of a region world per km^2 (uint16 object ids, 150 m of headroom; docs/city_scale.md section 3)."""
SESSION_BYTES = 0.7e9  # the rest of a worker's peak (sensors' scene, traffic, frames): measured 1.8-2.1 GB at 800 m


def region_world_bytes(index, allowed: dict, region_size: float, grid: GridSpec) -> float:
    """Upper estimate of one worker's peak memory: the largest region world any allowed place can give (the plan
    area is cut to the place's data, so a small input never builds a big world), plus the session's own needs."""
    from occworld_tokyo.world.region import crop_margin

    margin = crop_margin(grid)
    worst = 0.0
    for place in index.places:
        if place.id not in allowed:
            continue
        x0, y0, x1, y1 = place.bounds
        least = MIN_PLAN_SIDE + 2 * margin  # data smaller than a plan area gets one around it (sessions/regions.py)
        wx = max(min(region_size + 2 * margin, x1 - x0 + 2 * margin + 2.0), least)
        wy = max(min(region_size + 2 * margin, y1 - y0 + 2 * margin + 2.0), least)
        worst = max(worst, wx * wy / 1e6)
    return REGION_BYTES_PER_KM2 * worst + SESSION_BYTES


def check_region_memory(index, allowed: dict, spec: GenerationSpec, workers: int, grid: GridSpec) -> None:
    """Refuse, before any session starts, a --region-size / --workers whose region worlds cannot fit in memory
    (a MemoryError or the OOM killer would otherwise stop the run after its work had begun)."""
    from occworld_tokyo.memory import check_memory

    per_worker = region_world_bytes(index, allowed, spec.region_size, grid)
    check_memory(per_worker * workers + 0.2e9,
                 f"--region-size {spec.region_size:g} with --workers {workers} ({per_worker / 1e9:.3g} GB per "
                 "worker: region worlds of about 1.6 GB per km^2)",
                 f"a smaller --region-size (default {DEFAULT_REGION_SIZE:g} m) or fewer --workers")


def check_output_dir(output: Path) -> None:
    if output.exists() and not output.is_dir():
        raise GenerationError(f"--output {output} is a file; give a folder (it is created if missing)")
    foreign = layout.foreign_entries(output)
    if foreign:
        shown = ", ".join(foreign[:5]) + (" ..." if len(foreign) > 5 else "")
        raise GenerationError(
            f"--output {output} already holds things that are not sessions ({shown}); "
            "nothing was written: choose an empty or new folder, or one that holds only earlier sessions")


def sample_district_input(cache_dir: Path) -> Path:
    """The built-in sample district written (once) as CityGML under the cache folder; its udx/ folder."""
    from occworld_tokyo.citymodel.sample_city import GENERATOR_VERSION, write_sample_district

    import os
    import shutil

    folder = Path(cache_dir) / f"sample_district_v{GENERATOR_VERSION}_seed0_600m"
    if not folder.exists():  # written aside and renamed: runs starting together never see half a district
        tmp = folder.parent / f".{folder.name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        write_sample_district(tmp, seed=0, size_m=600.0)
        try:
            os.replace(tmp, folder)
        except OSError:  # another run got there first: its copy is identical
            shutil.rmtree(tmp, ignore_errors=True)
            if not folder.exists():
                raise
    return folder / "udx"


def generate_sessions(output: str | Path, inputs: list[str] | None = None, *, spec: GenerationSpec | None = None,
                      workers: int = 1, strict: bool = False, progress: bool = True,
                      mesh: CityMesh | None = None, world=None, cache_dir: str | Path | None = None
                      ) -> GenerationReport:
    """Generate the planned sessions into `output` (see module docstring). Returns what was written.

    inputs: PLATEAU files / folders / zips (None: the built-in sample district), indexed into the tile cache
    `cache_dir` (default: citymodel.cache.default_cache_dir()). mesh= and world= instead give one prepared
    world for every session (library use and tests; no sampling of areas).

    The run holds `output` with a shared claim and each session it will write with a claim of its own
    (`occworld_tokyo.locks.claim_folder(shared=True)`, `claim_names`): shards of one run write into one folder
    together, while a second run that would write a session another run is writing (an identical run, or a shard
    of a run with another n) stops at once with a message, before any work, instead of replacing that session."""
    from occworld_tokyo.locks import NAMED_CLAIMS, claim_folder

    spec = spec or GenerationSpec()
    output = Path(output)
    check_output_dir(output)
    created = not output.exists()
    try:
        # the workers hold the claims with the run: while any of them lives, its sessions stay claimed and no
        # exclusive claim can take the folder
        with claim_folder(output, "session generation", children_hold=True, shared=NAMED_CLAIMS):
            return _generate_claimed(output, inputs, spec, workers, strict, progress, mesh, world, cache_dir)
    finally:
        if created and output.is_dir() and not any(output.iterdir()):
            output.rmdir()  # a run that wrote nothing leaves no empty folder behind


def _generate_claimed(output: Path, inputs: list[str] | None, spec: GenerationSpec, workers: int, strict: bool,
                      progress: bool, mesh: CityMesh | None, world, cache_dir: str | Path | None) -> GenerationReport:
    t0 = time.perf_counter()
    names = spec.names()
    agents = spec.agents()
    shard_i, shard_n = spec.shard
    jobs = [(i, agents[i], names[i]) for i in range(spec.sessions) if i % shard_n == shard_i]
    from occworld_tokyo.locks import claim_names

    # every session this run may write is claimed before any work (and checked again after: one that another run
    # finished meanwhile is skipped like any finished session)
    unfinished = [job[2] for job in jobs if not layout.is_session_dir(output / job[2])]
    with claim_names(output, unfinished, "session", SHARE_FIX, children_hold=True):
        return _generate_sessions_claimed(output, jobs, inputs, spec, workers, strict, progress, mesh, world,
                                          cache_dir, t0)


SHARE_FIX = ("Runs may share an output folder only when they write different sessions: give each its own --shard "
             "i/n of the same --sessions, --frames, --rate and --start-time, or wait for that run to finish (a "
             "re-run skips the sessions it finished)")


def _generate_sessions_claimed(output: Path, jobs: list, inputs: list[str] | None, spec: GenerationSpec,
                               workers: int, strict: bool, progress: bool, mesh: CityMesh | None, world,
                               cache_dir: str | Path | None, t0: float) -> GenerationReport:
    input_names = [str(p) for p in inputs or [SAMPLE_DISTRICT]]
    check_reusable(output, jobs, spec, input_names)
    report = GenerationReport(output=output, others=other_sessions(output, spec))
    todo = []
    for job in jobs:
        if layout.is_session_dir(output / job[2]):
            report.skipped.append(job[2])
        else:
            todo.append(job)
    if not todo and not strict:  # nothing to write: no need to read the input (--strict checks coverage again)
        report.seconds = time.perf_counter() - t0
        return report

    from occworld_tokyo.citymodel.index import check_disk_space

    if todo:
        check_disk_space(output, len(todo) * spec.frames * BYTES_PER_FRAME[spec.sensors],
                         f"{len(todo)} session(s) x {spec.frames} frames")
    grid = grid_named(spec.grid)
    ctx = _Context(spec=spec, grid=grid, output=output, input_names=input_names)
    _read_input(ctx, report, inputs, workers if len(todo) > 1 else 1, strict, progress, mesh, world, cache_dir)
    if todo:
        _write_sessions(ctx, report, todo, workers, progress)
    report.coverage = run_coverage(ctx, output, mesh)
    report.seconds = time.perf_counter() - t0
    if strict and report.coverage.warnings and not report.coverage.partial:
        raise GenerationError(report.coverage.strict_error(output))
    return report


def _read_input(ctx: _Context, report: GenerationReport, inputs: list[str] | None, workers: int, strict: bool,
                progress: bool, mesh: CityMesh | None, world, cache_dir: str | Path | None) -> None:
    """Fill ctx with the city: one given world (mesh=, world=) or the index of the inputs, and the notes about
    the input (duplicates dropped, geometry problems, data smaller than a plan area) into the report."""
    spec, grid = ctx.spec, ctx.grid
    if mesh is not None or world is not None:
        if mesh is None:
            raise GenerationError("world= needs its mesh= (or give neither, to read the inputs)")
        from occworld_tokyo.world import build_voxel_world
        from occworld_tokyo.world.region import crop_world_for

        if world is None:
            world = build_voxel_world(mesh, progress=progress)
        ctx.whole = (mesh, world, crop_world_for(mesh, world, grid, progress=progress))
        return
    from occworld_tokyo.citymodel.cache import default_cache_dir
    from occworld_tokyo.citymodel.index import build_index, region_filter_codes

    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    src = list(inputs) if inputs else [sample_district_input(root)]
    ctx.index = build_index(src if len(src) > 1 else src[0], cache_dir=root, workers=workers, strict=strict,
                            progress=progress)
    try:
        ctx.allowed = region_filter_codes(ctx.index, spec.region)
    except ValueError as exc:
        raise GenerationError(str(exc)) from exc
    check_region_memory(ctx.index, ctx.allowed, spec, workers, grid)
    report.notes += ctx.index.notes
    for place in ctx.index.places:
        x0, y0, x1, y1 = place.bounds
        if place.id in ctx.allowed and min(x1 - x0, y1 - y0) < MIN_PLAN_SIDE:
            report.notes.append(
                f"note: the data of place {place.id} (mesh {', '.join(place.codes[:3])}) spans only {x1 - x0:.0f} x "
                f"{y1 - y0:.0f} m: its sessions fly or drive a plan area of at least {MIN_PLAN_SIDE:.0f} m around "
                "it, open ground beyond the data (sessions/regions.py)")


def _write_sessions(ctx: _Context, report: GenerationReport, todo: list, workers: int, progress: bool) -> None:
    """Run the sessions `todo` (one process, or `workers` processes) with a progress bar; fills the report."""
    spec = ctx.spec
    ctx.output.mkdir(parents=True, exist_ok=True)
    ctx_mp = mp.get_context("fork")
    ctx.progress = ctx_mp.Value("l", 0)
    total = len(todo) * spec.frames
    bar = tqdm(total=total, unit="frame", desc="sessions", disable=not progress, dynamic_ncols=True)

    def done(result: tuple[str, int, list[str]]) -> None:
        name, n, notes = result
        report.written.append(name)
        report.redrawn += notes
        report.frames_written += n

    try:
        if workers <= 1 or len(todo) == 1:
            local = _Worker(ctx)
            for job in todo:
                done(_run_session(local, job))
                bar.update(ctx.progress.value - bar.n)
        else:
            _run_in_processes(ctx, todo, min(workers, len(todo)), ctx_mp, done,
                              lambda: bar.update(ctx.progress.value - bar.n))
        bar.update(ctx.progress.value - bar.n)
    finally:
        bar.close()


def run_coverage(ctx: _Context, output: Path, mesh: CityMesh | None) -> CoverageReport:
    """The coverage of the run's planned sessions that are complete in `output` (written now, before, or by the
    other shards), against the content of the input (the tiles --region allows); partial while some planned
    session is not written yet (another shard's)."""
    from occworld_tokyo.sessions.reuse import read_session_meta

    names = ctx.spec.names()
    done = [n for n in names if layout.is_session_dir(output / n)]
    metas = [read_session_meta(output / n) for n in done]
    kinds = kinds_of_mesh(mesh) if ctx.whole is not None else kinds_of_index(ctx.index, ctx.allowed)
    return coverage_report(kinds, metas, sorted(set(ctx.spec.agents())), partial=len(done) < len(names))
