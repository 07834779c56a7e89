"""Core triggers: Schedule (cron), Flow (another execution ended) and Webhook (an HTTP call).

The kernel drives them (scheduler, executor and HTTP server), so they are models with
deploy-time validation; ``Schedule`` also computes its own fire dates.
"""

from __future__ import annotations

import warnings
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tiercel.api import Example, ExecutionTrigger, ScheduleTrigger, WebhookTrigger
from tiercel.model import State

#: Cron nicknames accepted in place of fields.
NICKNAMES = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}



def check_cron(cron: str, with_seconds: bool = False) -> str:
    """Return *cron* when valid; otherwise raise ValueError saying what is wrong and how to fix it."""
    from croniter import croniter

    expr = " ".join(cron.split())
    if expr.startswith("@"):
        if expr.lower() not in NICKNAMES:
            raise ValueError(f"unknown cron nickname `{expr}`; use one of {', '.join(sorted(NICKNAMES))}")
        return expr
    fields = expr.split(" ")
    wanted = 6 if with_seconds else 5
    if len(fields) != wanted:
        hint = ("with `withSeconds: true` the first field is seconds: `sec min hour day month weekday`"
                if with_seconds else "`min hour day month weekday`, e.g. `0 2 * * *`; for a seconds field set `withSeconds: true`")
        raise ValueError(f"cron `{cron}` has {len(fields)} fields, expected {wanted}: {hint}")
    if not croniter.is_valid(expr, second_at_beginning=with_seconds):
        raise ValueError(f"cron `{cron}` is not a valid cron expression (fields: "
                         f"{'sec ' if with_seconds else ''}min hour day-of-month month day-of-week)")
    return expr


class Backfill(BaseModel):
    """Kestra's older Schedule `backfill`: fire the dates from `start` (to `end`, or now) once, when deployed."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    start: datetime | None = Field(None, description="First date to fire (ISO-8601).")
    end: datetime | None = Field(None, description="Last date to fire; now when omitted.")
    inputs: dict[str, Any] | None = Field(None, description="Inputs of the backfilled executions.")
    labels: dict[str, str] | None = Field(None, description="Labels of the backfilled executions.")

    @field_validator("start", "end")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class Schedule(ScheduleTrigger):
    """Start an execution on a cron schedule, in a given time zone.

    ``trigger.date`` is the scheduled date of the execution, ``trigger.next`` and
    ``trigger.previous`` the neighbouring ones. Missed dates (the scheduler was down) are
    replayed per ``recoverMissedSchedules``.
    """

    type: ClassVar[str] = "core.Schedule"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.core.trigger.Schedule", "io.kestra.core.models.triggers.types.Schedule")
    static_fields: ClassVar[frozenset[str]] = ScheduleTrigger.static_fields | {"cron", "timezone"}
    examples: ClassVar[list[Example]] = [
        Example("Every night at 2:00, Paris time", """\
id: nightly_report
namespace: company.team
tasks:
  - id: report
    type: core.Log
    message: "Report for {{ trigger.date ?? 'a manual run' }}"
triggers:
  - id: nightly
    type: core.Schedule
    cron: "0 2 * * *"
    timezone: Europe/Paris
    recoverMissedSchedules: LAST
"""),
        Example("Every 30 seconds, skipping runs that are more than a minute late", """\
id: frequent
namespace: company.team
tasks:
  - id: tick
    type: core.Log
    message: tick
triggers:
  - id: every_30s
    type: core.Schedule
    cron: "*/30 * * * * *"
    withSeconds: true
    lateMaximumDelay: PT1M
"""),
    ]

    cron: str = Field(description="Cron expression: `min hour day month weekday` (5 fields), 6 with `withSeconds`, or `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`.")
    withSeconds: bool = Field(False, description="The cron expression starts with a seconds field.")
    timezone: str | None = Field(None, description="IANA time zone the cron is read in (`Europe/Paris`); the server's zone when omitted.")
    backfill: Backfill | None = Field(None, description="Kestra's older form: dates from `start` fired once when the flow is deployed (prefer `tiercel triggers backfill`).")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is None:
            return value
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone `{value}`; use an IANA name such as `Europe/Paris` or `UTC`") from None
        return value

    @model_validator(mode="after")
    def _cron(self) -> Schedule:
        self.cron = check_cron(self.cron, self.withSeconds)
        return self

    def tzinfo(self) -> Any:
        """The zone the cron is read in (the server's local zone when ``timezone`` is not set)."""
        if self.timezone:
            from zoneinfo import ZoneInfo

            return ZoneInfo(self.timezone)
        return datetime.now().astimezone().tzinfo

    def zone(self) -> Any:
        return self.tzinfo()

    def signature(self) -> str:
        return f"{self.cron}|{self.withSeconds}|{self.timezone}"

    def next_fire(self, after: float) -> float:
        """The first scheduled instant strictly after *after*, on the wall clock of the zone.

        A time skipped by a DST jump fires at the same offset after the jump (02:30 -> 03:30);
        a time that occurs twice fires once, the first time.
        """
        from croniter import croniter

        tz = self.tzinfo()
        naive = datetime.fromtimestamp(after, tz).replace(tzinfo=None)
        it = croniter(self.cron, naive, second_at_beginning=self.withSeconds)
        for _ in range(10_000):
            ts: float = it.get_next(datetime).replace(tzinfo=tz, fold=0).timestamp()
            if ts > after:
                return ts
        raise ValueError(f"cron `{self.cron}` never fires")

    def previous_fire(self, before: float) -> float:
        """The last scheduled instant strictly before *before*."""
        from croniter import croniter

        tz = self.tzinfo()
        naive = datetime.fromtimestamp(before, tz).replace(tzinfo=None)
        it = croniter(self.cron, naive, second_at_beginning=self.withSeconds)
        for _ in range(10_000):
            ts: float = it.get_prev(datetime).replace(tzinfo=tz, fold=0).timestamp()
            if ts < before:
                return ts
        raise ValueError(f"cron `{self.cron}` never fires")

    def next_date(self, after: datetime) -> datetime:
        """The first scheduled date strictly after *after* (an aware datetime), in the trigger's zone."""
        return self._iter(after).get_next(datetime)

    def previous_date(self, before: datetime) -> datetime:
        """The last scheduled date strictly before *before* (an aware datetime), in the trigger's zone."""
        return self._iter(before).get_prev(datetime)

    def _iter(self, start: datetime) -> Any:
        from croniter import croniter

        if start.tzinfo is None:
            raise ValueError("pass an aware datetime (with a tzinfo)")
        return croniter(self.cron, start.astimezone(self.tzinfo()), second_at_beginning=self.withSeconds)


class FlowFilter(BaseModel):
    """An upstream flow a precondition waits for."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    namespace: str = Field(description="Namespace of the upstream flow.")
    flowId: str = Field(description="Id of the upstream flow.")
    states: list[State] | None = Field(None, description="States its execution must end in (default: SUCCESS).")
    labels: dict[str, str] | None = Field(None, description="Labels its execution must carry.")


class Filter(BaseModel):
    """One test on an ended execution."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    field: Literal["FLOW_ID", "NAMESPACE", "STATE", "EXPRESSION"] = Field(description="What is tested.")
    type: Literal["EQUAL_TO", "NOT_EQUAL_TO", "IN", "NOT_IN", "IS_TRUE", "IS_FALSE", "IS_NULL", "IS_NOT_NULL",
                  "STARTS_WITH", "ENDS_WITH", "REGEX", "CONTAINS"] = Field(description="The comparison.")
    value: str | None = Field(None, description="The value compared with (single-value comparisons).")
    values: list[str] | None = Field(None, description="The values compared with (IN, NOT_IN).")


class Where(BaseModel):
    """A named group of filters an ended execution must pass."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    id: str = Field(description="Identifier of the group.")
    operand: Literal["AND", "OR"] = Field("AND", description="How the filters combine.")
    filters: list[Filter] = Field(min_length=1, description="The filters.")


class TimeWindow(BaseModel):
    """The period within which all preconditions must be met."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    type: Literal["DURATION_WINDOW", "SLIDING_WINDOW", "DAILY_TIME_DEADLINE", "DAILY_TIME_WINDOW"] = Field(
        "DURATION_WINDOW", description="Kind of window.")
    window: timedelta | None = Field(None, description="Length of the window (DURATION_WINDOW, SLIDING_WINDOW); 24 hours by default.")
    windowAdvance: timedelta | None = Field(None, description="Shift of the window start (DURATION_WINDOW).")
    deadline: str | None = Field(None, description="Time of day by which conditions must be met (DAILY_TIME_DEADLINE), `HH:MM:SS`.")
    startTime: str | None = Field(None, description="Start of the daily window (DAILY_TIME_WINDOW), `HH:MM:SS`.")
    endTime: str | None = Field(None, description="End of the daily window (DAILY_TIME_WINDOW), `HH:MM:SS`.")


class Preconditions(BaseModel):
    """Wait for several upstream executions (and filters) before starting this flow once."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    id: str = Field(description="Identifier of this set of preconditions (progress is stored under it).")
    flows: list[FlowFilter] | None = Field(None, description="Upstream flows that must all have ended as required.")
    where: list[Where] | None = Field(None, description="Filter groups that must all be met.")
    timeWindow: TimeWindow | None = Field(None, description="Period within which everything must happen.")
    resetOnSuccess: bool = Field(True, description="Start counting again once the flow was triggered.")


class Flow(ExecutionTrigger):
    """Start an execution when executions of other flows end (in given states, matching preconditions).

    ``trigger.executionId``, ``trigger.namespace``, ``trigger.flowId``, ``trigger.flowRevision``,
    ``trigger.state``, ``trigger.outputs`` and ``trigger.failedTasks`` (ids of its failed tasks) describe the
    upstream execution.
    """

    type: ClassVar[str] = "core.Flow"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.core.trigger.Flow", "io.kestra.core.models.triggers.types.Flow")
    examples: ClassVar[list[Example]] = [
        Example("Run after the `extract` flow succeeded", """\
id: transform
namespace: company.team
tasks:
  - id: log
    type: core.Log
    message: "extract {{ trigger.executionId ?? '(run by hand)' }} ended {{ trigger.state ?? '' }}"
triggers:
  - id: after_extract
    type: core.Flow
    states: [SUCCESS]
    preconditions:
      id: extract_done
      flows:
        - namespace: company.team
          flowId: extract
          states: [SUCCESS]
"""),
    ]

    states: list[State] | None = Field(None, description="Upstream end states that start this flow; all terminal states by default.")
    preconditions: Preconditions | None = Field(None, description="Upstream flows and filters that must all be met (within a time window).")


class Webhook(WebhookTrigger):
    """Start an execution on an HTTP call to ``/api/v1/executions/webhook/<namespace>/<flowId>/<key>``.

    GET, POST and PUT work. ``trigger.body`` is the body (parsed as JSON when it is JSON),
    ``trigger.headers`` a map of lists, ``trigger.parameters`` the query string. The key is
    the secret part of the URL: make it long and random (a shorter one than 8 characters
    is accepted but warned about).
    """

    type: ClassVar[str] = "core.Webhook"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.core.trigger.Webhook", "io.kestra.core.models.triggers.types.Webhook")
    examples: ClassVar[list[Example]] = [
        Example("Start on a POST and log its JSON body", """\
id: on_webhook
namespace: company.team
tasks:
  - id: log
    type: core.Log
    message: "received {{ trigger.body ?? 'nothing: started by hand' }}"
triggers:
  - id: hook
    type: core.Webhook
    key: 4wjtkzwVGBM9yKnjm3yv8r
"""),
    ]


    returnOutputs: bool = Field(False, description="With `wait`, answer with the execution's outputs alone (Kestra's form).")
    responseContentType: str | None = Field(None, description="Content type of that answer (`application/json` by default); "
                                                              "a text type answers a single output as plain text.")

    @field_validator("key")
    @classmethod
    def _key(cls, value: str) -> str:
        if "{{" in value:  # checked once rendered
            return value
        if "/" in value or any(c.isspace() for c in value):
            raise ValueError("the key is part of a URL path: no `/` and no spaces")
        if len(value) < 8:
            warnings.warn(f"webhook key `{value}` is short ({len(value)} characters): anyone who guesses it can start "
                          f"executions; use at least 8 random characters", UserWarning, stacklevel=2)
        return value
