"""Sensors: landing files, and the champion's bento; the drift sensor joins in issue 7."""

from sensors.champion import bento_job, champion_sensor
from sensors.landing import landing_sensor

sensors = [landing_sensor, champion_sensor]
sensor_jobs = [bento_job]
