"""Drone and rover trajectories planned in a voxel world (docs/trajectories.md).

    plan_drone(world, n_frames, rate_hz=2.0, rng, pattern=None)  -> Trajectory  ("survey" | "orbit" | "waypoints")
    plan_rover(world, n_frames, rate_hz=2.0, rng, pattern=None)  -> Trajectory  ("street")

The *_motion variants also return the continuous MotionCurve the frames were sampled from.
"""

from .curves import MotionCurve, NoStreetSpaceError, PlanningError
from .common import PlannedMotion
from .drone import DRONE_PATTERNS, DroneSpec, check_drone_curve, plan_drone, plan_drone_motion
from .rover import ROVER_PATTERNS, RoverSpec, check_rover_curve, plan_rover, plan_rover_motion
from .trajectory import Trajectory

__all__ = [
    "DRONE_PATTERNS",
    "ROVER_PATTERNS",
    "DroneSpec",
    "RoverSpec",
    "MotionCurve",
    "PlannedMotion",
    "PlanningError",
    "NoStreetSpaceError",
    "Trajectory",
    "plan_drone",
    "plan_drone_motion",
    "plan_rover",
    "plan_rover_motion",
    "check_drone_curve",
    "check_rover_curve",
]
