"""Evaluation: forecast mIoU/IoU, VPQ (all voxels and camera-visible), planning L2/collision and the three
forecast baselines (docs/metrics.md)."""

from .baselines import copy_last_frame, ego_warp, ego_warp_fill, warp_frame
from .occupancy_metrics import OccupancyMetrics, ReconstructionMetrics, confusion_matrix, reconstruction_metrics
from .planning import OBSTACLE_CLASSES, PlanningMetrics, planning_metrics
from .visible import AllAndVisible, split_results
from .vpq import VPQMetric, threshold_key

__all__ = [
    "OccupancyMetrics", "ReconstructionMetrics", "confusion_matrix", "reconstruction_metrics",
    "VPQMetric", "threshold_key", "AllAndVisible", "split_results",
    "PlanningMetrics", "planning_metrics", "OBSTACLE_CLASSES",
    "copy_last_frame", "ego_warp", "ego_warp_fill", "warp_frame",
]
