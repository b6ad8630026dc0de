"""Training data: session folders -> windows of consecutive frames -> batches.

- `sessions`: read session folders (meta.json, npz, pose JSON);
- `poses`: the 13-d pose relative to the current frame;
- `grid_select`: the part/resolution of the stored grid a config trains on;
- `windows`: split by session, window dataset;
- `loader`: resumable distributed sampler, DataLoader builder, loader speed measurement.
"""

from occworld_tokyo.dataset.grid_select import GridSelection, select_grid
from occworld_tokyo.dataset.loader import DataBundle, ResumableSampler, build_datasets, make_loader, measure_loader
from occworld_tokyo.dataset.poses import POSE_DIM, relative_poses
from occworld_tokyo.dataset.sessions import DataError, SessionInfo, find_sessions
from occworld_tokyo.dataset.windows import OccWindowDataset, Split, split_sessions

__all__ = ["GridSelection", "select_grid", "DataBundle", "ResumableSampler", "build_datasets", "make_loader",
           "measure_loader", "POSE_DIM", "relative_poses", "DataError", "SessionInfo", "find_sessions",
           "OccWindowDataset", "Split", "split_sessions"]
