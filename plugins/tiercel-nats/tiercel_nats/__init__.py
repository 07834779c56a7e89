"""NATS plugin for Tiercel (tasks in :mod:`tiercel_nats.tasks`, triggers in :mod:`tiercel_nats.triggers`)."""

__version__ = "0.1.0"
