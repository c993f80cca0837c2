"""Location (seed 004): IP geolocation, location history, suspicious sign-ins, geofences."""
