"""Pulsar plugin for Tiercel (tasks in :mod:`tiercel_pulsar.tasks`, triggers in :mod:`tiercel_pulsar.triggers`)."""

__version__ = "0.1.0"
