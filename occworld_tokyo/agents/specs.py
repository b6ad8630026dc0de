"""Agent classes with real-world dimensions and speeds, the traffic density and the id convention.

Dimensions (length x width x height, metres) are typical Japanese road vehicles (a compact car about
4.5 x 1.8 x 1.5, a minivan 4.7 x 1.7 x 1.9, a city bus about 11-12 x 2.5 x 3.2, a 4 t delivery truck
about 7.5 x 2.2 x 3.0), an adult pedestrian (0.5 x 0.5 x 1.75 with its arm swing) and a small
quadcopter (0.8 x 0.8 x 0.3). Every agent draws its own size within `size_jitter` of the nominal one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..labels import DRONE, LABEL_NAMES, PEDESTRIAN, VEHICLE

AGENT_ID_BASE = 1_000_000  # agent instance ids start here: city instance ids are far below (one per object)


@dataclass(frozen=True)
class AgentClassSpec:
    """One kind of moving agent."""

    name: str  # subclass name written into the annotations ("car", "bus", ...)
    label: int  # storage label id (occworld_tokyo.labels)
    length: float  # m, along the heading
    width: float  # m
    height: float  # m
    speed_range: tuple[float, float]  # m/s, desired (cruise) speed drawn per agent
    weight: float = 1.0  # relative frequency within its label
    size_jitter: float = 0.06  # relative: each dimension is scaled by U(1 - j, 1 + j)

    @property
    def label_name(self) -> str:
        return LABEL_NAMES[self.label]

    def draw_size(self, rng: np.random.Generator) -> np.ndarray:
        """(3,) length, width, height of one agent."""
        f = rng.uniform(1.0 - self.size_jitter, 1.0 + self.size_jitter, 3)
        return np.array([self.length, self.width, self.height]) * f


AGENT_CLASSES: tuple[AgentClassSpec, ...] = (
    AgentClassSpec("car", VEHICLE, 4.5, 1.8, 1.5, (8.0, 14.0), weight=0.70),
    AgentClassSpec("van", VEHICLE, 4.8, 1.9, 2.0, (7.0, 12.0), weight=0.15),
    AgentClassSpec("truck", VEHICLE, 7.5, 2.2, 3.0, (6.0, 11.0), weight=0.10),
    AgentClassSpec("bus", VEHICLE, 11.5, 2.5, 3.2, (5.0, 10.0), weight=0.05, size_jitter=0.03),
    AgentClassSpec("pedestrian", PEDESTRIAN, 0.5, 0.5, 1.75, (1.0, 1.6), size_jitter=0.1),
    AgentClassSpec("drone", DRONE, 0.8, 0.8, 0.3, (5.0, 12.0), size_jitter=0.1),
)
KIND_NAMES: tuple[str, ...] = tuple(c.name for c in AGENT_CLASSES)


def kinds_of(label: int) -> np.ndarray:
    """Indices into AGENT_CLASSES of the kinds with this storage label."""
    return np.array([i for i, c in enumerate(AGENT_CLASSES) if c.label == label], dtype=np.int64)


def draw_kinds(label: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """n kind indices of one label, drawn by the kinds' weights."""
    ks = kinds_of(label)
    w = np.array([AGENT_CLASSES[k].weight for k in ks], dtype=np.float64)
    return ks[rng.choice(len(ks), size=n, p=w / w.sum())] if n else np.zeros(0, dtype=np.int64)


@dataclass(frozen=True)
class TrafficDensity:
    """Agents per square kilometre of the simulated region (all 0 = a static city).

    Defaults: a busy Tokyo ward in the daytime (a few hundred moving vehicles and about a thousand
    people outdoors per km^2) and a sparse future drone traffic. Vehicles are also capped by the lane
    length available (one vehicle per `TrafficSpec.min_vehicle_spacing` metres of lane).
    """

    vehicles_per_km2: float = 250.0
    pedestrians_per_km2: float = 1000.0
    drones_per_km2: float = 20.0

    def __post_init__(self) -> None:
        for v in (self.vehicles_per_km2, self.pedestrians_per_km2, self.drones_per_km2):
            if not (np.isfinite(v) and v >= 0):
                raise ValueError("densities must be finite and >= 0")

    @property
    def static(self) -> bool:
        return self.vehicles_per_km2 == 0 and self.pedestrians_per_km2 == 0 and self.drones_per_km2 == 0

    @staticmethod
    def none() -> "TrafficDensity":
        return TrafficDensity(0.0, 0.0, 0.0)


@dataclass(frozen=True)
class TrafficSpec:
    """Tuning of the simulation (defaults documented in docs/agents.md)."""

    # street space
    vehicle_clear_height: float = 4.0  # m: vehicle columns must be free of obstacles this high
    person_clear_height: float = 2.2  # m: pedestrian columns
    network_cell: float = 2.0  # m: cell of the street skeleton
    min_street_half_width: float = 3.2  # m: street clearance needed on a vehicle edge (centre to obstacle)
    spur_length: float = 12.0  # m: dead-end skeleton branches shorter than this are pruned
    # vehicles
    lane_offset: float = 1.7  # m, lane centre to the left of the street centreline (Japan keeps left)
    path_smoothing: float = 4.0  # m, Gaussian sigma of a route's centreline
    path_step: float = 0.5  # m
    body_margin: float = 0.25  # m: a vehicle footprint grown by this must stay in vehicle space
    min_vehicle_spacing: float = 15.0  # m of lane per vehicle at most
    idm_accel: float = 1.5  # m/s^2
    idm_brake: float = 2.5  # m/s^2 comfortable deceleration
    idm_headway: float = 1.2  # s
    idm_min_gap: float = 2.0  # m
    max_brake: float = 8.0  # m/s^2 emergency limit
    corner_lateral_accel: float = 2.0  # m/s^2: desired speed capped in curves
    lookahead: float = 45.0  # m of route searched for obstacles
    max_wait: float = 90.0  # s: a vehicle stuck this long leaves (gridlock breaker); a new one enters
    # junction signals (junctions.py): one approach at a time, actuated
    signal_min_green: float = 6.0  # s
    signal_max_green: float = 20.0  # s, when another approach is waiting
    signal_amber: float = 3.0  # s
    signal_all_red: float = 1.5  # s at least, and until the junction box is empty
    signal_stop_decel: float = 3.5  # m/s^2: at amber, a vehicle that would need more than this goes on
    signal_detect: float = 50.0  # m before the stop line a waiting vehicle calls for green
    # pedestrians
    sidewalk_band: tuple[float, float] = (0.6, 3.5)  # m from the nearest obstacle column
    crossing_rate: float = 0.01  # 1/s: chance per second to start crossing the street
    crossing_clear: float = 25.0  # m: no vehicle this near when a pedestrian starts to cross
    heading_noise: float = 0.25  # rad/sqrt(s)
    # drones
    drone_min_agl: float = 30.0
    drone_max_agl: float = 120.0
    drone_clearance: float = 10.0  # m above anything within drone_horizontal_clearance
    drone_horizontal_clearance: float = 6.0
    drone_climb_rate: float = 3.0  # m/s
    drone_yaw_rate: float = 0.6  # rad/s
    # simulation
    substep: float = 0.25  # s, at most
    warmup: float = 10.0  # s simulated before frame 0 (traffic already flowing)
