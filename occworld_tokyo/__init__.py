"""occworld_tokyo: PLATEAU city models -> drone/rover occupancy sessions -> OccWorld fine-tuning.

The package follows the data's path:
citymodel (PLATEAU CityGML/OBJ -> triangle meshes) -> world (voxel world, ego crops) ->
sensors + trajectories -> sessions (session folders on disk) -> dataset -> model -> training ->
evaluation -> reports.
"""

__version__ = "0.1.0"
