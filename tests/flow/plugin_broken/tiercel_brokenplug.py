"""A plugin whose import fails, for `tiercel plugins list`."""

import a_dependency_that_is_not_installed  # noqa: F401
