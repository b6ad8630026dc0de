"""Geometry helpers of the city-model readers: polygon containers, ring cleaning, triangulation, extrusion."""
