"""Kafka plugin for Tiercel (tasks and triggers in :mod:`tiercel_kafka.tasks` and :mod:`tiercel_kafka.triggers`)."""

__version__ = "0.1.0"
