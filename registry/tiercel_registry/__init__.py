"""Tiercel's plugin registry: the conformance suite (a pytest plugin), the grader and the index builder.

A plugin's whole conformance test::

    from tiercel_registry import TaskConformance
    from tiercel_hello.plugin import Hello

    class TestHello(TaskConformance):
        component = Hello
"""

from tiercel_registry.checks import CheckFailed, CheckSkipped, Options, run_check
from tiercel_registry.conformance import (
                                          Conformance,
                                          RunnerConformance,
                                          SecretProviderConformance,
                                          StorageConformance,
                                          TaskConformance,
                                          TriggerConformance,
                                          conformance_suite,
)

__version__ = "0.1.0"
__all__ = ["TaskConformance", "TriggerConformance", "RunnerConformance", "StorageConformance",
           "SecretProviderConformance", "Conformance",
           "conformance_suite", "CheckFailed", "CheckSkipped", "Options", "run_check"]
