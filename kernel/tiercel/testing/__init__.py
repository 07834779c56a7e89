"""Test support for Tiercel and its plugins: real services (services), pytest fixtures (fixtures).

Kept empty so that importing the pytest plugin stays cheap; import the submodules.
"""
