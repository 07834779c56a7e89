"""Tiercel git: clone, push, and deploy flows from a repository."""
