"""Sandboxed expression rendering: ``{{ … }}`` in flow properties (Jinja2, Kestra's meanings).

    >>> Renderer().render("{{ 6 * 7 }}", {})
    42

Importing this package does not import Jinja2: plain variable paths are looked up directly
and the sandboxed Jinja renderer loads on the first expression that needs it.
"""

from .errors import ExpressionError, Missing
from .facade import Renderer
from .paths import truthy

__all__ = ["ExpressionError", "Missing", "Renderer", "truthy"]
