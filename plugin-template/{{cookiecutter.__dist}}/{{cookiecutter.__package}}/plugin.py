"""The entry point of {{ cookiecutter.__dist }}: the kernel calls these hooks when it loads plugins."""

from tiercel import hookimpl

#: The kernel API versions this plugin works with.
TIERCEL_API = ">=1.0,<2"


@hookimpl
def register_tasks(register):
    from {{ cookiecutter.__package }}.tasks import Greet

    register(Greet)


@hookimpl
def register_triggers(register):
    from {{ cookiecutter.__package }}.triggers import NewFile

    register(NewFile)
