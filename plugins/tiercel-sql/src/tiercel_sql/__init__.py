"""tiercel-sql: SQL queries and a polling trigger for any database SQLAlchemy speaks to."""

__version__ = "0.1.0"
