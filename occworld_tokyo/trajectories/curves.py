"""From a planar route to one smooth motion curve: smoothing, speed profile, timing, attitude.

The pipeline both planners share:
1. a route polyline (x, y) -> `resample_polyline` at a fixed arc step -> `smooth_path` (Gaussian along
   arc length: continuous curvature, no overshoot);
2. `speed_profile`: cruise speed capped by lateral acceleration and yaw rate in curves, ramped by a
   longitudinal acceleration limit, then smoothed;
3. `time_samples`: the route sampled at a fixed time step (0.1 s);
4. the planner adds z per sample, and `MotionCurve.fit` interpolates (t, x, y, z) with one quintic
   B-spline of time.

Everything a Trajectory holds is then evaluated *analytically* from that spline and its derivatives:
position P(t), velocity P'(t), yaw from the velocity (or towards a point), multirotor tilt from the
acceleration P''(t) (rates from the jerk P'''(t)), rover pitch from the climb angle. So velocities and
angular velocities are exactly the derivatives of the poses, and the same curve can be checked as
densely as wanted between frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.interpolate import BSpline, make_interp_spline, make_lsq_spline
from scipy.ndimage import gaussian_filter1d, maximum_filter1d, minimum_filter1d

from ..rotations import angular_velocity_from_euler, quat_from_euler
from .trajectory import Trajectory

GRAVITY = 9.81


class PlanningError(ValueError):
    """A trajectory cannot be planned in this world with these settings (the message says what to change)."""


class NoStreetSpaceError(PlanningError):
    """The world has no free street space a rover could drive in."""


def arc_length(points: np.ndarray) -> np.ndarray:
    """Cumulative arc length (K,) along a polyline (K, D)."""
    seg = np.linalg.norm(np.diff(points, axis=0), axis=1)
    return np.concatenate([[0.0], np.cumsum(seg)])


def resample_polyline(points: np.ndarray, step: float) -> np.ndarray:
    """Points evenly spaced by ~`step` along the polyline (first and last point kept)."""
    points = np.asarray(points, dtype=np.float64)
    keep = np.concatenate([[True], np.linalg.norm(np.diff(points, axis=0), axis=1) > 1e-9])
    points = points[keep]
    s = arc_length(points)
    if s[-1] <= 0:
        return points[:1].copy()
    n = max(int(np.ceil(s[-1] / step)), 1)
    s_new = np.linspace(0.0, s[-1], n + 1)
    return np.stack([np.interp(s_new, s, points[:, d]) for d in range(points.shape[1])], axis=1)


def smooth_path(points: np.ndarray, step: float, sigma_m: float) -> np.ndarray:
    """Gaussian smoothing along arc length of an evenly resampled path; ends are extended straight.

    Straight stretches stay where they are, corners are rounded with a radius of the order of `sigma_m`.
    """
    if sigma_m <= 0 or len(points) < 3:
        return points.copy()
    sigma = sigma_m / step
    pad = int(np.ceil(4 * sigma)) + 1
    d0 = points[1] - points[0]
    d1 = points[-1] - points[-2]
    head = points[0] - d0 * np.arange(pad, 0, -1)[:, None]
    tail = points[-1] + d1 * np.arange(1, pad + 1)[:, None]
    ext = np.concatenate([head, points, tail])
    sm = gaussian_filter1d(ext, sigma, axis=0, mode="nearest", truncate=4.0)
    return sm[pad:-pad]


def path_curvature(points: np.ndarray) -> np.ndarray:
    """Unsigned curvature (1/m) of an evenly resampled planar path, by finite differences."""
    if len(points) < 3:
        return np.zeros(len(points))
    s = arc_length(points)
    dx = np.gradient(points[:, 0], s)
    dy = np.gradient(points[:, 1], s)
    ddx = np.gradient(dx, s)
    ddy = np.gradient(dy, s)
    return np.abs(dx * ddy - dy * ddx) / np.maximum((dx * dx + dy * dy) ** 1.5, 1e-12)


def bounded_smooth(values: np.ndarray, sigma: float, lower: np.ndarray | None = None,
                   upper: np.ndarray | None = None) -> np.ndarray:
    """Gaussian-smooth `values` so that the result stays within lower/upper bounds known per sample.

    Each bound is first spread over the kernel's support (running max of `lower`, running min of
    `upper`); values are clipped to those envelopes and then smoothed with a kernel truncated to the same
    support, so every output is a weighted mean of inputs that all satisfy the bound at that sample.
    Raises PlanningError when the envelopes cross.
    """
    v = np.asarray(values, dtype=np.float64)
    if sigma <= 0:
        return v.copy()
    radius = int(np.ceil(3 * sigma))
    size = 2 * radius + 1
    lo_env = maximum_filter1d(lower, size, mode="nearest") if lower is not None else None
    hi_env = minimum_filter1d(upper, size, mode="nearest") if upper is not None else None
    if lo_env is not None and hi_env is not None and np.any(lo_env > hi_env):
        raise PlanningError("bounds cross along the path")
    if lo_env is not None:
        v = np.maximum(v, lo_env)
    if hi_env is not None:
        v = np.minimum(v, hi_env)
    return gaussian_filter1d(v, sigma, mode="nearest", truncate=radius / sigma)


@dataclass(frozen=True)
class SpeedLimits:
    """The motion bands a speed profile must respect (per agent type)."""

    v_min: float  # m/s, horizontal
    v_max: float  # m/s, horizontal
    a_lat: float  # m/s^2, lateral (centripetal) acceleration in curves
    a_long: float  # m/s^2, speeding up / slowing down
    yaw_rate: float  # rad/s


def speed_profile(points: np.ndarray, cruise: np.ndarray | float, limits: SpeedLimits) -> np.ndarray:
    """Speed (K,) along an evenly resampled path: cruise capped in curves, acceleration-limited, smooth."""
    s = arc_length(points)
    ds = float(s[-1] / max(len(s) - 1, 1))
    kappa = path_curvature(points)
    cap = np.minimum(np.sqrt(limits.a_lat / np.maximum(kappa, 1e-9)), limits.yaw_rate / np.maximum(kappa, 1e-9))
    v = np.minimum(np.broadcast_to(np.asarray(cruise, dtype=np.float64), s.shape), cap)
    v = np.minimum(v, limits.v_max)
    if np.min(v) < limits.v_min:
        raise PlanningError(f"path too tight: a curve allows only {np.min(v):.2f} m/s < {limits.v_min} m/s")
    # longitudinal acceleration: forward (speeding up) and backward (slowing down) passes on v^2
    a2 = 2.0 * 0.8 * limits.a_long * ds
    ramp = np.arange(len(v)) * a2
    v2 = np.minimum.accumulate(v * v - ramp) + ramp  # v2[i] <= v2[i-1] + a2 (speeding up)
    v2 = (np.minimum.accumulate(v2[::-1] - ramp) + ramp)[::-1]  # v2[i] <= v2[i+1] + a2 (slowing down)
    v = np.sqrt(v2)
    sigma = max(1.0 * np.mean(v) / max(ds, 1e-9), 1.0)  # ~1 s of travel
    sigma = min(sigma, len(v) / 8 + 1)
    v = bounded_smooth(v, sigma, lower=np.full_like(v, limits.v_min), upper=v)
    return v


def time_samples(points: np.ndarray, speed: np.ndarray, duration: float, dt: float) -> tuple[np.ndarray, np.ndarray]:
    """Sample an evenly resampled path driven at `speed` every dt over [0, duration] -> (t (M,), xy (M, 2)).

    Raises PlanningError when the path is too short for the duration.
    """
    s = arc_length(points)
    v_mid = 0.5 * (speed[1:] + speed[:-1])
    t_of_s = np.concatenate([[0.0], np.cumsum(np.diff(s) / v_mid)])
    if t_of_s[-1] < duration:
        raise PlanningError(f"path lasts {t_of_s[-1]:.1f} s < {duration:.1f} s")
    n = int(np.floor(duration / dt + 1e-9)) + 1
    t = np.arange(n) * dt
    if t[-1] < duration - 1e-9:
        t = np.append(t, duration)
    s_t = np.interp(t, t_of_s, s)
    xy = np.stack([np.interp(s_t, s, points[:, 0]), np.interp(s_t, s, points[:, 1])], axis=1)
    return t, xy


@dataclass(frozen=True)
class MotionCurve:
    """One agent's continuous motion: a quintic spline of time for x, y, z plus an attitude rule.

    Curve time `u` and session time `t` relate by u = t + t_offset (the planner starts the session a
    little after the start of the curve, away from interpolation end effects).

    yaw_mode: "velocity" (body x along the horizontal velocity) or "look_at" (body x towards `look_at`).
    tilt_mode: "none" (level), "thrust" (multirotor: body z along the thrust a + g e_z, so the body
    leans into accelerations and turns), "climb" (ground vehicle: pitch = climb angle, no roll).
    """

    spline: BSpline
    t_offset: float
    duration: float
    yaw_mode: str = "velocity"
    tilt_mode: str = "none"
    look_at: tuple[float, float] | None = None
    _d: tuple = field(default=(), repr=False, compare=False)

    @staticmethod
    def fit(t: np.ndarray, xyz: np.ndarray, t_offset: float, duration: float, knot_dt: float = 0.5,
            **attitude) -> "MotionCurve":
        """Least-squares quintic spline with knots every knot_dt seconds through samples (t, xyz).

        Samples are denser than knots (0.1 s vs 0.5 s), so the millimetre noise of sampling a resampled
        polyline does not reach the jerk (which drives the multirotor tilt rates).
        """
        t = np.asarray(t, dtype=np.float64)
        n_int = max(int(round((t[-1] - t[0]) / knot_dt)), 1)
        inner = np.linspace(t[0], t[-1], n_int + 1)[1:-1]
        if len(t) < len(inner) + 6 + 1:
            spline = make_interp_spline(t, np.asarray(xyz, dtype=np.float64), k=min(5, len(t) - 1))
        else:
            knots = np.concatenate([[t[0]] * 6, inner, [t[-1]] * 6])
            spline = make_lsq_spline(t, np.asarray(xyz, dtype=np.float64), knots, k=5)
        return MotionCurve(spline, float(t_offset), float(duration), **attitude)

    def __post_init__(self) -> None:
        d1 = self.spline.derivative(1)
        object.__setattr__(self, "_d", (self.spline, d1, d1.derivative(1), d1.derivative(2)))

    # ---- translational ----------------------------------------------------------------------------
    def derivatives(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Position, velocity, acceleration, jerk (each (N, 3)) at session times t."""
        u = np.atleast_1d(np.asarray(t, dtype=np.float64)) + self.t_offset
        return tuple(f(u) for f in self._d)  # type: ignore[return-value]

    def position(self, t: np.ndarray) -> np.ndarray:
        return self._d[0](np.atleast_1d(np.asarray(t, dtype=np.float64)) + self.t_offset)

    def velocity(self, t: np.ndarray) -> np.ndarray:
        return self._d[1](np.atleast_1d(np.asarray(t, dtype=np.float64)) + self.t_offset)

    # ---- rotational -------------------------------------------------------------------------------
    def euler(self, t: np.ndarray) -> tuple[np.ndarray, ...]:
        """(yaw, pitch, roll, yaw_rate, pitch_rate, roll_rate) at session times t, analytically."""
        p, v, a, j = self.derivatives(t)
        yaw, yaw_rate = self._yaw(p, v, a)
        if self.tilt_mode == "thrust":
            pitch, roll, pitch_rate, roll_rate = thrust_tilt(yaw, yaw_rate, a, j)
        elif self.tilt_mode == "climb":
            pitch, pitch_rate = climb_pitch(v, a)
            roll = roll_rate = np.zeros_like(pitch)
        elif self.tilt_mode == "none":
            pitch = roll = pitch_rate = roll_rate = np.zeros_like(yaw)
        else:
            raise ValueError(f"unknown tilt_mode {self.tilt_mode!r}")
        return yaw, pitch, roll, yaw_rate, pitch_rate, roll_rate

    def _yaw(self, p: np.ndarray, v: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.yaw_mode == "velocity":
            vx, vy, ax, ay = v[:, 0], v[:, 1], a[:, 0], a[:, 1]
            return np.arctan2(vy, vx), (vx * ay - vy * ax) / np.maximum(vx * vx + vy * vy, 1e-12)
        if self.yaw_mode == "look_at":
            if self.look_at is None:
                raise ValueError("yaw_mode 'look_at' needs look_at")
            dx, dy = self.look_at[0] - p[:, 0], self.look_at[1] - p[:, 1]
            ddx, ddy = -v[:, 0], -v[:, 1]
            return np.arctan2(dy, dx), (dx * ddy - dy * ddx) / np.maximum(dx * dx + dy * dy, 1e-12)
        raise ValueError(f"unknown yaw_mode {self.yaw_mode!r}")

    def quat(self, t: np.ndarray) -> np.ndarray:
        yaw, pitch, roll, *_ = self.euler(t)
        return quat_from_euler(yaw, pitch, roll)

    def angular_velocity(self, t: np.ndarray) -> np.ndarray:
        yaw, pitch, _roll, dyaw, dpitch, droll = self.euler(t)
        return angular_velocity_from_euler(yaw, pitch, dyaw, dpitch, droll)

    def to_trajectory(self, world, agent_type: str, pattern: str, t: np.ndarray) -> Trajectory:
        """Sample the curve at session times t into a Trajectory (ground from world.ground_height)."""
        t = np.asarray(t, dtype=np.float64)
        p, v, _a, _j = self.derivatives(t)
        yaw, pitch, roll, dyaw, dpitch, droll = self.euler(t)
        ground = np.asarray(world.ground_height(p[:, 0], p[:, 1]), dtype=np.float64)
        return Trajectory(
            agent_type=agent_type,
            t=t,
            position=p,
            quat_xyzw=quat_from_euler(yaw, pitch, roll),
            lin_vel=v,
            ang_vel=angular_velocity_from_euler(yaw, pitch, dyaw, dpitch, droll),
            ground=ground,
            pattern=pattern,
        )


def thrust_tilt(yaw: np.ndarray, yaw_rate: np.ndarray, acc: np.ndarray, jerk: np.ndarray,
                g: float = GRAVITY) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Multirotor attitude: body z along the specific thrust f = a + g e_z, for a given yaw.

    In the yaw-rotated frame f = (fx, fy, fz): pitch = atan2(fx, fz), roll = atan2(-fy, hypot(fx, fz))
    (so R = Rz(yaw) Ry(pitch) Rx(roll) maps body z onto f / |f|). Rates follow from the jerk.
    """
    c, s = np.cos(yaw), np.sin(yaw)
    fx = c * acc[:, 0] + s * acc[:, 1]
    fy = -s * acc[:, 0] + c * acc[:, 1]
    fz = acc[:, 2] + g
    dfx = c * jerk[:, 0] + s * jerk[:, 1] + yaw_rate * fy
    dfy = -s * jerk[:, 0] + c * jerk[:, 1] - yaw_rate * fx
    dfz = jerk[:, 2]
    pitch = np.arctan2(fx, fz)
    pitch_rate = (fz * dfx - fx * dfz) / (fx * fx + fz * fz)
    rho = np.hypot(fx, fz)
    drho = (fx * dfx + fz * dfz) / rho
    roll = np.arctan2(-fy, rho)
    roll_rate = (-rho * dfy + fy * drho) / (rho * rho + fy * fy)
    return pitch, roll, pitch_rate, roll_rate


def climb_pitch(vel: np.ndarray, acc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ground-vehicle pitch = -climb angle of the velocity (nose up when climbing) and its rate."""
    vh = np.maximum(np.hypot(vel[:, 0], vel[:, 1]), 1e-9)
    dvh = (vel[:, 0] * acc[:, 0] + vel[:, 1] * acc[:, 1]) / vh
    vz, az = vel[:, 2], acc[:, 2]
    pitch = -np.arctan2(vz, vh)
    pitch_rate = -(vh * az - vz * dvh) / (vh * vh + vz * vz)
    return pitch, pitch_rate


def frame_times(n_frames: int, rate_hz: float) -> np.ndarray:
    """Session timestamps: frame i at i / rate_hz seconds."""
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}")
    if not rate_hz > 0:
        raise ValueError(f"rate_hz must be > 0, got {rate_hz}")
    return np.arange(n_frames, dtype=np.float64) / float(rate_hz)
