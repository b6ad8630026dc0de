"""Sensor specifications (lidar and camera) and the per-agent defaults.

Frames (see docs/sensors.md):
- body frame: x forward, y left, z up (the trajectory's body, `quat_xyzw` rotates body -> world);
- lidar frame: x forward, y left, z up before the mount rotation; beam elevation is measured from the
  lidar's x-y plane (positive up), azimuth counter-clockwise from the lidar's x axis;
- camera frame: OpenCV, x right, y down, z forward (optical axis); pixel (u, v) = K @ (x/z, y/z, 1),
  pixel centres at integer + 0.5 (the top-left pixel covers u in [0, 1), v in [0, 1)).
- mounts: `mount_xyz` is the sensor origin in the body frame (m); `mount_rpy_deg` = (roll, pitch, yaw) of
  the sensor relative to the body, composed as Rz(yaw) Ry(pitch) Rx(roll) about the body's x-forward,
  y-left, z-up axes, so a positive pitch tilts the sensor's forward axis *down* (right-hand rotation about y).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from occworld_tokyo.rotations import rigid, rpy_deg_to_matrix

AGENT_TYPES = ("drone", "rover")

# OpenCV camera axes expressed in the un-rotated camera mount frame (x forward, y left, z up):
# camera x (right) = -y, camera y (down) = -z, camera z (forward) = +x. Columns are the camera axes.
R_MOUNT_OPENCV = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


@dataclass(frozen=True)
class LidarSpec:
    """A spinning multi-beam lidar: `beams` rows evenly spaced in elevation, `columns` azimuth steps."""

    beams: int = 64
    columns: int = 1024
    vertical_fov_deg: tuple[float, float] = (-16.6, 16.6)  # (lowest, highest) beam elevation
    max_range: float = 120.0  # m; returns beyond are dropped (no return)
    min_range: float = 0.5  # m; returns closer are dropped (sensor blind zone)
    mount_xyz: tuple[float, float, float] = (0.0, 0.0, 0.0)
    mount_rpy_deg: tuple[float, float, float] = (0.0, 0.0, 0.0)
    range_noise_std: float = 0.0  # m, Gaussian noise added to each range (0 = exact)
    intensity_noise_std: float = 0.05  # relative speckle on the intensity (0 = none)
    model: str = "Ouster OS1-64 (horizontal)"

    def __post_init__(self) -> None:
        lo, hi = self.vertical_fov_deg
        if self.beams < 1 or self.columns < 1:
            raise ValueError("lidar needs at least one beam and one column")
        if not (-90.0 <= lo <= hi <= 90.0):
            raise ValueError(f"vertical_fov_deg must satisfy -90 <= lo <= hi <= 90, got {self.vertical_fov_deg}")
        if not (0.0 <= self.min_range < self.max_range):
            raise ValueError("need 0 <= min_range < max_range")

    @property
    def n_rays(self) -> int:
        return self.beams * self.columns

    def elevations_deg(self) -> np.ndarray:
        """(beams,) beam elevations, highest first (beam 0 is the top beam, as Ouster numbers them)."""
        lo, hi = self.vertical_fov_deg
        return np.linspace(hi, lo, self.beams) if self.beams > 1 else np.array([(lo + hi) / 2.0])

    def azimuths_deg(self) -> np.ndarray:
        """(columns,) azimuths, column 0 looks along the lidar's x axis, counter-clockwise seen from above."""
        return np.arange(self.columns) * (360.0 / self.columns)

    def rays_lidar(self) -> np.ndarray:
        """(beams * columns, 3) unit directions in the lidar frame, beam-major (row b = rays b*C .. b*C+C-1)."""
        el = np.deg2rad(self.elevations_deg())[:, None]
        az = np.deg2rad(self.azimuths_deg())[None, :]
        d = np.stack(np.broadcast_arrays(np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)), axis=-1)
        return d.reshape(-1, 3)

    @property
    def R_body_lidar(self) -> np.ndarray:
        return rpy_deg_to_matrix(self.mount_rpy_deg)

    @property
    def T_body_lidar(self) -> np.ndarray:
        """(4, 4) lidar -> body transform."""
        return rigid(self.R_body_lidar, np.asarray(self.mount_xyz, dtype=np.float64))

    def rays_body(self) -> np.ndarray:
        """(beams * columns, 3) unit ray directions in the body frame (mount rotation applied)."""
        return self.rays_lidar() @ self.R_body_lidar.T

    def to_dict(self) -> dict:
        d = asdict(self)
        d["n_rays"] = self.n_rays
        d["frame"] = "lidar x forward, y left, z up; points are written in the ego grid frame"
        return d


@dataclass(frozen=True)
class CameraSpec:
    """A pinhole camera (no distortion) with OpenCV axes: x right, y down, z forward."""

    width: int = 1600
    height: int = 900
    fx: float = 1266.4
    fy: float = 1266.4
    cx: float = 800.0
    cy: float = 450.0
    mount_xyz: tuple[float, float, float] = (0.0, 0.0, 0.0)
    mount_rpy_deg: tuple[float, float, float] = (0.0, 0.0, 0.0)
    near: float = 0.1  # m along the optical axis; closer surfaces are ignored
    far: float = 2000.0  # m along the ray; farther surfaces render as sky (depth inf)
    name: str = "CAM_FRONT"

    def __post_init__(self) -> None:
        if self.width < 1 or self.height < 1 or self.fx <= 0 or self.fy <= 0:
            raise ValueError("camera needs a positive size and focal length")
        if not (0.0 <= self.near < self.far):
            raise ValueError("need 0 <= near < far")

    @property
    def K(self) -> np.ndarray:
        """(3, 3) intrinsic matrix."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def R_body_cam(self) -> np.ndarray:
        """(3, 3) rotation of OpenCV camera axes into the body frame."""
        return rpy_deg_to_matrix(self.mount_rpy_deg) @ R_MOUNT_OPENCV

    @property
    def T_body_cam(self) -> np.ndarray:
        """(4, 4) camera (OpenCV axes) -> body transform: p_body = T_body_cam @ p_cam."""
        return rigid(self.R_body_cam, np.asarray(self.mount_xyz, dtype=np.float64))

    def fov_deg(self) -> tuple[float, float]:
        """(horizontal, vertical) full field of view in degrees."""
        return (float(np.rad2deg(2 * np.arctan(self.width / (2 * self.fx)))),
                float(np.rad2deg(2 * np.arctan(self.height / (2 * self.fy)))))

    def pixel_rays_cam(self, step: int = 1) -> np.ndarray:
        """(H', W', 3) un-normalised rays (x, y, 1) in camera axes through pixel centres, every `step` pixels.

        With step s, the sample (i, j) is the centre of the s x s pixel block whose top-left pixel is (s*i, s*j).
        """
        v = (np.arange(0, self.height, step) + step / 2.0 - self.cy) / self.fy
        u = (np.arange(0, self.width, step) + step / 2.0 - self.cx) / self.fx
        uu, vv = np.meshgrid(u, v)
        return np.stack([uu, vv, np.ones_like(uu)], axis=-1)

    def to_dict(self) -> dict:
        """JSON-ready description for meta.json: intrinsics, extrinsics and the axis conventions."""
        h_fov, v_fov = self.fov_deg()
        return {
            "name": self.name,
            "model": "pinhole, no distortion",
            "width": self.width,
            "height": self.height,
            "intrinsics": {"fx": self.fx, "fy": self.fy, "cx": self.cx, "cy": self.cy, "K": self.K.tolist()},
            "fov_deg": {"horizontal": h_fov, "vertical": v_fov},
            "extrinsics": {
                "mount_xyz": list(self.mount_xyz),
                "mount_rpy_deg": list(self.mount_rpy_deg),
                "T_body_cam": self.T_body_cam.tolist(),
            },
            "near": self.near,
            "far": self.far,
            "camera_axes": "OpenCV: x right, y down, z forward (optical axis); pixel centres at integer + 0.5",
            "body_axes": "x forward, y left, z up; T_body_cam maps camera-frame points to the body frame",
            "mount_rpy_convention": "R = Rz(yaw) Ry(pitch) Rx(roll) about body axes; positive pitch looks down",
            "depth": "metres along the optical axis (camera z)",
        }


def _check_agent(agent_type: str) -> None:
    if agent_type not in AGENT_TYPES:
        raise ValueError(f"agent_type must be one of {AGENT_TYPES}, got {agent_type!r}")


def default_lidar(agent_type: str) -> LidarSpec:
    """The default lidar of each agent (justified in docs/sensors.md).

    rover: Ouster OS1-64, 64 x 1024, 33.2 deg vertical FOV, 120 m, mounted level at the body origin.
    drone: a downward-looking spinning lidar (the lower hemisphere of a dome unit such as Ouster's OSDome,
    with mapping-lidar range): 128 beams from -88 to -8 deg elevation x 1024 columns = 131,072 rays, 200 m.
    """
    _check_agent(agent_type)
    if agent_type == "rover":
        return LidarSpec()
    return LidarSpec(beams=128, columns=1024, vertical_fov_deg=(-88.0, -8.0), max_range=200.0, min_range=0.5,
                     mount_xyz=(0.0, 0.0, -0.15), model="downward dome lidar, 128 beams, -88..-8 deg")


def default_camera(agent_type: str) -> CameraSpec:
    """nuScenes-like CAM_FRONT (1600 x 900, fx = fy = 1266.4); the drone's camera is pitched down 30 deg."""
    _check_agent(agent_type)
    if agent_type == "rover":
        return CameraSpec(mount_xyz=(0.1, 0.0, 0.0))
    return CameraSpec(mount_xyz=(0.1, 0.0, -0.1), mount_rpy_deg=(0.0, 30.0, 0.0))
