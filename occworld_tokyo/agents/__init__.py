"""Moving agents of a living city: vehicles, pedestrians and other drones (docs/agents.md).

    simulate_traffic(world, n_frames, rate_hz, rng, density, *, region=None) -> TrafficRecording
    paint_agents(labels, instances, frame, states, grid) -> None          (in place)
    agent_mesh(states) -> CityMesh                                        (for lidar / camera ray casting)
    annotations(states, frame, grid, *, occupancy_instances=None) -> list[dict]

Instance ids start at AGENT_ID_BASE (1,000,000), above every city instance id, and stay the same for
as long as the agent exists.
"""

from .annotations import annotations
from .mesh import agent_mesh, box_corners
from .specs import AGENT_CLASSES, AGENT_ID_BASE, KIND_NAMES, AgentClassSpec, TrafficDensity, TrafficSpec
from .states import AgentStates, TrafficRecording, boxes_overlap, overlapping_pairs
from .traffic import simulate_traffic
from .voxelize import box_voxel_count, box_voxels, paint_agents

__all__ = [
    "AGENT_CLASSES", "AGENT_ID_BASE", "KIND_NAMES", "AgentClassSpec", "AgentStates", "TrafficDensity",
    "TrafficRecording", "TrafficSpec", "agent_mesh", "annotations", "box_corners", "box_voxel_count",
    "box_voxels", "boxes_overlap", "overlapping_pairs", "paint_agents", "simulate_traffic",
]
