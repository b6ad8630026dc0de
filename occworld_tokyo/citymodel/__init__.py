"""City models: PLATEAU CityGML / OBJ readers and the built-in sample district, all producing a CityMesh.

Public API:
- load_city(inputs, *, strict=False, progress=True) -> CityMesh
- write_sample_district(out_dir, *, seed=0, size_m=600.0) -> list[Path]
- load_sample_city(*, seed=0, size_m=600.0, cache_dir=None) -> CityMesh
- CityMesh, Fill, GeoOrigin (mesh.py); CityModelError and subclasses (errors.py)
"""

from .errors import (CityModelError, CityModelWarning, CoordinateRangeError, CRSError, MalformedXMLError,
                     UnsafeXMLError)
from .loader import load_city
from .mesh import CityMesh, Fill, GeoOrigin
from .sample_city import load_sample_city, write_sample_district

__all__ = ["load_city", "load_sample_city", "write_sample_district", "CityMesh", "Fill", "GeoOrigin", "CityModelError", "CityModelWarning",
           "CoordinateRangeError", "CRSError", "MalformedXMLError", "UnsafeXMLError"]
