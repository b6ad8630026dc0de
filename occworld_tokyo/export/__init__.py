"""Exports of finished sessions into the occupancy ecosystem's formats (`occworld-tokyo export`):
Occ3D / released OccWorld (`occ3d.py`) and UniOcc (`uniocc.py`); the class mapping in `classes.py`, the pose and
sensor conventions in `frames.py`. Exports only read the sessions and write a new folder atomically."""
