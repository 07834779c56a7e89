"""RabbitMQ (AMQP 0-9-1) plugin for Tiercel (tasks in :mod:`tiercel_amqp.tasks`, triggers in :mod:`tiercel_amqp.triggers`)."""

__version__ = "0.1.0"
