"""Docker task runner for Tiercel (the model in :mod:`tiercel_docker.runner`)."""

__version__ = "0.1.0"
