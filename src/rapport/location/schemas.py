"""Request and response shapes of locations, suspicious sign-ins, geofences and their
events, and of what the IP database says of an address."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, Self
from uuid import UUID

from pydantic import BaseModel, Field, model_validator

from rapport.kernel.schemas import JsonDateTime, Name80, NotNull, PatchBody, Strict

# The values the CHECK constraints of migration 2026_11_30_0047 allow.
LocationType = Literal["ip_based", "gps", "wifi", "cell_tower"]
Reason = Literal["impossible_travel", "risky_address"]
Shape = Literal["circle", "polygon"]
EventType = Literal["enter", "exit"]
ThreatLevel = Literal["low", "medium", "high", "critical"]
ConnectionType = Literal["unknown", "residential", "mobile", "business", "hosting", "satellite"]
Source = Literal["maxmind_csv", "dbip_csv", "mmdb"]

Latitude = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False, description="Degrees, WGS 84.")]
Longitude = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False, description="Degrees, WGS 84.")]
Point = Annotated[
    list[Annotated[float, Field(allow_inf_nan=False)]],
    Field(min_length=2, max_length=2, description="[latitude, longitude] in degrees."),
]


class IpLocation(BaseModel):
    """What the IP database says of one address: the most specific network that places
    it, the most specific that names its network operator, and every flag of the
    networks containing it."""

    network: str
    ip_version: int
    country_code: str | None = None
    country_name: str | None = None
    region: str | None = None
    city: str | None = None
    postal_code: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    accuracy_radius_km: int | None = None
    time_zone: str | None = None
    isp: str | None = None
    asn: int | None = None
    organization: str | None = None
    is_proxy: bool = False
    is_vpn: bool = False
    is_tor: bool = False
    is_hosting: bool = False
    threat_level: ThreatLevel = "low"
    risk_score: int = 0
    connection_type: ConnectionType = "unknown"
    source: Source


class LocationIn(Strict):
    """A location a device measured."""

    location_type: LocationType = Field(
        description="`gps`, `wifi` or `cell_tower` (`ip_based` locations come from sign-ins only)."
    )
    latitude: Latitude
    longitude: Longitude
    accuracy_m: Annotated[float, Field(ge=0, le=1_000_000, allow_inf_nan=False)] | None = Field(
        default=None, description="Radius in metres within which the device was."
    )
    captured_at: JsonDateTime | None = Field(
        default=None, description="When it was measured (default now); at most a week ago, never in the future."
    )

    @model_validator(mode="after")
    def _device_measured(self) -> Self:
        if self.location_type == "ip_based":
            raise ValueError("location_type ip_based is recorded by Rapport at sign-in; send gps, wifi or cell_tower")
        return self


class LocationOut(BaseModel):
    id: UUID
    location_type: LocationType
    latitude: float
    longitude: float
    accuracy_m: float | None
    country_code: str | None
    region: str | None
    city: str | None
    ip_address: str | None
    previous_location_id: UUID | None
    distance_km: float | None = Field(description="From the previous location (haversine).")
    seconds_since_previous: float | None
    speed_kmh: float | None
    is_moving: bool
    is_new_country: bool
    captured_at: datetime
    created_at: datetime


class LocationEventOut(BaseModel):
    id: UUID
    geofence_id: UUID
    user_location_id: UUID
    event_type: EventType
    latitude: float
    longitude: float
    occurred_at: datetime
    created_at: datetime


class LocationRecorded(BaseModel):
    """A location added, with the geofences it entered or left."""

    location: LocationOut
    events: list[LocationEventOut]


class SuspiciousLocationOut(BaseModel):
    id: UUID
    user_location_id: UUID | None
    reason: Reason
    ip_address: str
    country_code: str | None
    city: str | None
    previous_location_id: UUID | None
    distance_km: float | None
    speed_kmh: float | None
    risk_score: int
    sign_in_method: str
    second_factor_required: bool
    details: dict[str, Any]
    created_at: datetime


class GeofenceIn(Strict):
    """A circle (`center` and `radius_m`) or a polygon (`polygon`, three points or more)."""

    name: Name80
    shape: Shape
    center: Point | None = Field(default=None, description="A circle's centre.")
    radius_m: Annotated[float, Field(gt=0, le=1_000_000, allow_inf_nan=False)] | None = Field(
        default=None, description="A circle's radius in metres (at most 1000 km)."
    )
    polygon: Annotated[list[Point], Field(min_length=3, max_length=500)] | None = Field(
        default=None, description="A polygon's vertices, in order; it closes by itself."
    )
    platform: bool = Field(
        default=False, description="Platform-wide: everyone's locations are tested against it (administrators only)."
    )

    @model_validator(mode="after")
    def _shape_has_its_parts(self) -> Self:
        if self.shape == "circle":
            if self.center is None or self.radius_m is None or self.polygon is not None:
                raise ValueError("a circle has a center and a radius_m, and no polygon")
            _check_point(self.center)
        else:
            if self.polygon is None or self.center is not None or self.radius_m is not None:
                raise ValueError("a polygon has polygon points, and no center or radius_m")
            for point in self.polygon:
                _check_point(point)
        return self


def _check_point(point: list[float]) -> None:
    latitude, longitude = point
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        raise ValueError("a point is [latitude, longitude]: latitude within ±90, longitude within ±180")


class GeofenceUpdate(PatchBody):
    name: NotNull[Name80] = None
    is_active: NotNull[bool] = None


class GeofenceOut(BaseModel):
    id: UUID
    owner_id: UUID | None = Field(description="Null: platform-wide.")
    name: str
    shape: Shape
    center: list[float] | None
    radius_m: float | None
    polygon: list[list[float]] | None
    is_active: bool
    created_at: datetime
    updated_at: datetime
