"""Distances on the Earth without PostGIS: the great circle between two points and the
box around a circle, the same arithmetic as the SQL functions matching.distance_km
(migration 2026_11_30_0031) and matching.in_box (2026_11_30_0032) that the daily job's
query uses, in Python: what the tests check the SQL's answers against."""

from __future__ import annotations

import math
from dataclasses import dataclass

EARTH_RADIUS_KM = 6371.0088
# The length of one degree of latitude (and of longitude at the equator) on that sphere.
KM_PER_DEGREE = EARTH_RADIUS_KM * math.pi / 180


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The great-circle distance between two points in degrees (haversine)."""
    half = (
        math.sin(math.radians(lat2 - lat1) / 2) ** 2
        + math.cos(math.radians(lat1)) * math.cos(math.radians(lat2)) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(half)))


@dataclass(frozen=True)
class Box:
    """Every point within some km of a centre lies in it: latitudes from `lat_min` to
    `lat_max`, and longitudes within `lon_span` degrees of the centre's either way (across
    the date line too); `lon_span` None near a pole, where every longitude may be close."""

    lat_min: float
    lat_max: float
    center_lon: float
    lon_span: float | None

    def holds(self, lat: float, lon: float) -> bool:
        if not self.lat_min <= lat <= self.lat_max:
            return False
        if self.lon_span is None:
            return True
        apart = abs(lon - self.center_lon)
        return min(apart, 360 - apart) <= self.lon_span


def bounding_box(lat: float, lon: float, km: float) -> Box:
    """The box around the circle of `km` about a point, as matching.in_box draws it."""
    lat_span = km / KM_PER_DEGREE
    widest = abs(lat) + lat_span
    # A circle's longitudes spread the most at its edge nearer the pole.
    lon_span = None if widest >= 89.0 else km / (KM_PER_DEGREE * math.cos(math.radians(widest)))
    return Box(lat - lat_span, lat + lat_span, lon, lon_span)
