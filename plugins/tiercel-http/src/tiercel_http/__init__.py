"""tiercel-http: HTTP requests, downloads into internal storage, and a polling HTTP trigger."""

__version__ = "0.1.0"
