"""The Renderer: plain variable paths looked up directly, everything else by sandboxed Jinja2."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .paths import MISS, render_simple, simple_template


class Renderer:
    """Renders ``{{ … }}`` and ``{% … %}`` in property values against run variables.

    Thread-safe. Jinja2 is imported and a template compiled only for expressions that are
    more than variable paths; compiled templates are cached by source.
    """

    def __init__(self, cache_size: int = 2048, registry: Any = None, cache_file: Path | None = None) -> None:
        """*cache_file*: where compiled templates are kept between processes (the CLI's home)."""
        self._cache_size = cache_size
        self._registry = registry
        self._cache_file = cache_file
        self._jinja: Any = None

    @property
    def jinja(self) -> Any:
        if self._jinja is None:
            from .renderer import JinjaRenderer

            registry = self._registry
            if registry is None:
                from tiercel.plugins import get_registry

                registry = get_registry()
            jinja = JinjaRenderer(self._cache_size, registry.extensions("function"), registry.extensions("filter"))
            if self._cache_file is not None:
                jinja.load_cache(self._cache_file)
            self._jinja = jinja
        return self._jinja

    def save_cache(self) -> None:
        """Keep what this process compiled for the next one (when a cache file is set and Jinja was used)."""
        if self._jinja is not None and self._cache_file is not None:
            try:
                self._jinja.save_cache(self._cache_file)
            except OSError:
                pass  # a cache that cannot be written costs speed, never a run

    @property
    def _compile(self) -> Any:  # the compiled-template cache, for tests and diagnostics
        return self.jinja._compile

    def render(self, value: Any, variables: Mapping[str, Any]) -> Any:
        """Render str, list and dict values recursively; a lone ``{{ expr }}`` keeps its native type."""
        if isinstance(value, str):
            if "{{" not in value and "{%" not in value:
                return value
            parts = simple_template(value)
            if parts is not None:
                result = render_simple(parts, variables, native=True)
                if result is not MISS:
                    return result
            return self.jinja.render(value, variables)
        if isinstance(value, dict):
            return {(self.render_string(k, variables) if isinstance(k, str) and ("{{" in k or "{%" in k) else k):
                    self.render(v, variables) for k, v in value.items()}
        if isinstance(value, list):
            return [self.render(v, variables) for v in value]
        if isinstance(value, tuple):
            return tuple(self.render(v, variables) for v in value)
        return value

    def is_cheap(self, value: Any) -> bool:
        """Whether rendering *value* takes microseconds (variable paths, or templates without loops and
        function calls), so a caller on an event loop may do it inline instead of in a thread."""
        if isinstance(value, str):
            if ("{{" not in value and "{%" not in value) or simple_template(value) is not None:
                return True
            return self.jinja.is_bounded(value)
        if isinstance(value, dict):
            return all(self.is_cheap(k) and self.is_cheap(v) for k, v in value.items())
        if isinstance(value, (list, tuple)):
            return all(self.is_cheap(v) for v in value)
        return True

    def render_string(self, value: Any, variables: Mapping[str, Any]) -> str:
        """Render to a string always (lists and maps print as JSON, null as '')."""
        if isinstance(value, str):
            if "{{" not in value and "{%" not in value:
                return value
            parts = simple_template(value)
            if parts is not None:
                result = render_simple(parts, variables, native=False)
                if result is not MISS:
                    return result
            return self.jinja.render_string(value, variables)
        from .builtins import to_text

        return to_text(self.render(value, variables))

    def evaluate(self, expression: str, variables: Mapping[str, Any]) -> Any:
        """Evaluate a condition or value: ``inputs.n > 3`` or ``{{ inputs.n > 3 }}``; returns the native value."""
        if isinstance(expression, str) and ("{{" in expression or "{%" in expression):
            return self.render(expression, variables)
        return self.jinja.evaluate(expression, variables)
