"""Exports of finished sessions into the occupancy ecosystem's formats (`occworld-tokyo export`):
Occ3D / released OccWorld (`occ3d.py`, with I2-World's flat list in `flat.py`) and UniOcc (`uniocc.py`, its flow
in `flow.py`); the class mappings in `classes.py`, the pose and sensor conventions in `frames.py`. Exports only
read the sessions and write a new folder atomically."""
