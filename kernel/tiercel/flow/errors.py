"""Validation errors that point at a file, line, column, task and property."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

Path = tuple[str | int, ...]


def format_path(path: Path) -> str:
    """``("tasks", 2, "retry", "maxAttempt")`` -> ``tasks[2].retry.maxAttempt``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


@dataclass
class FlowError:
    """One problem in a flow, located as precisely as the source allows (line/column 1-based)."""

    file: str | None
    line: int | None
    column: int | None
    task_id: str | None
    property: str | None
    message: str
    suggestion: str | None = None
    #: The source line the error points at, shown under the message with a caret (YAML syntax errors).
    source: str | None = None
    #: "error", or "warning" for what may work at run time (validate reports it without failing)
    severity: str = "error"

    def __str__(self) -> str:
        where = self.file or "<flow>"
        if self.line is not None:
            where += f":{self.line}:{self.column or 1}"
        task = f"task `{self.task_id}`: " if self.task_id else ""
        hint = f" ({self.suggestion})" if self.suggestion else ""
        level = "warning: " if self.severity == "warning" else ""
        text = f"{where}: {level}{task}{self.message}{hint}"
        if self.source is not None and self.line is not None:
            shown = self.source.expandtabs(1)  # a tab shows as one column, so the caret stays under it
            text += f"\n  {self.line:>4} | {shown}\n       | {' ' * ((self.column or 1) - 1)}^"
        return text

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["text"] = str(self)
        return data


class FlowValidationError(ValueError):
    """A flow that cannot be loaded; ``errors`` lists every problem found."""

    def __init__(self, errors: list[FlowError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


def did_you_mean(word: str, candidates: list[str] | set[str], quote: bool = True) -> str | None:
    """A 'did you mean' hint for *word* among *candidates*, or None when nothing is close."""
    import difflib

    lowered = {c.lower(): c for c in candidates}
    match = [lowered[word.lower()]] if word.lower() in lowered else difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    if not match:
        return None
    return f"did you mean `{match[0]}`?" if quote else f"did you mean {match[0]}?"
