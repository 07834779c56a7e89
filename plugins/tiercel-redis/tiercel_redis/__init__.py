"""Redis plugin for Tiercel (tasks in :mod:`tiercel_redis.tasks`, triggers in :mod:`tiercel_redis.triggers`)."""

__version__ = "0.1.0"
