"""SSH task runner for Tiercel (the model in :mod:`tiercel_ssh.runner`)."""

__version__ = "0.1.0"
