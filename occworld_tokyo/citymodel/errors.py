"""Exceptions and warnings of the city-model readers.

Every message names the file, the field or line at fault, and what to do about it, so that a user who
hands the converter a wrong folder or a broken download can fix it without reading the code.
"""

from __future__ import annotations


class CityModelError(ValueError):
    """An input that cannot be read as a city model (missing, malformed, unsafe, out of range)."""


class UnsafeXMLError(CityModelError):
    """An XML file that declares entities or an external DTD: refused, never expanded or fetched."""


class MalformedXMLError(CityModelError):
    """An XML file that is not well-formed (the message names the file and line)."""


class CRSError(CityModelError):
    """A file whose coordinate reference system is missing or not supported."""


class CoordinateRangeError(CityModelError):
    """Coordinates outside any plausible range for Japan (often: axis order swapped)."""


class CityModelWarning(UserWarning):
    """A problem that did not stop the load (e.g. a malformed file skipped with strict=False)."""
