"""Sensors: lidar and camera simulation by ray casting against a CityMesh, and Occ3D visibility masks.

Public API (docs/sensors.md):
- specs: `LidarSpec`, `CameraSpec`, `default_lidar(agent_type)`, `default_camera(agent_type)`;
- `RayCaster(mesh)`: an Embree scene built once per city (per process), `cast(origins, dirs)`;
- `scan_lidar(...) -> LidarScan` (points in the ego grid frame), `render_camera(...) -> CameraFrame`,
  `encode_jpeg(rgb, quality)`;
- `lidar_mask(...)`, `camera_mask(...)`: bool (200, 200, 121) masks in the ego grid.
"""

from occworld_tokyo.sensors.camera import CameraFrame, encode_jpeg, render_camera
from occworld_tokyo.sensors.lidar import LidarScan, scan_lidar
from occworld_tokyo.sensors.raycast import RayCaster
from occworld_tokyo.sensors.specs import CameraSpec, LidarSpec, default_camera, default_lidar
from occworld_tokyo.sensors.visibility import camera_mask, lidar_mask

__all__ = [
    "CameraFrame", "CameraSpec", "LidarScan", "LidarSpec", "RayCaster", "camera_mask", "default_camera",
    "default_lidar", "encode_jpeg", "lidar_mask", "render_camera", "scan_lidar",
]
