"""The registry's conformance suite for every conversion; the examples make their input with scripts.Shell."""

from tiercel_registry import conformance_suite

globals().update(conformance_suite("tiercel-serdes"))
