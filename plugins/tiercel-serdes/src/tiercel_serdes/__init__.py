"""Tiercel serdes: file-format conversions between internal-storage files."""
