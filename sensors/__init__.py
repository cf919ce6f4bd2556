"""Sensors: landing files now; drift and champion sensors join in later issues."""

from sensors.landing import landing_sensor

sensors = [landing_sensor]
