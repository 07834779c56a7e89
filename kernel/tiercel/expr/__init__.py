"""Sandboxed expression rendering: ``{{ … }}`` in flow properties (Jinja2, Kestra's meanings).

    >>> Renderer().render("{{ 6 * 7 }}", {})
    42
"""

from .errors import ExpressionError
from .renderer import Renderer, truthy

__all__ = ["ExpressionError", "Renderer", "truthy"]
