"""MQTT plugin for Tiercel (tasks in :mod:`tiercel_mqtt.tasks`, triggers in :mod:`tiercel_mqtt.triggers`)."""

__version__ = "0.1.0"
