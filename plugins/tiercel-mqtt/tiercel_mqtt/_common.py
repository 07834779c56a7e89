"""What the MQTT tasks and triggers share: the connection settings, errors, and message <-> variables."""

from __future__ import annotations

import urllib.parse
from typing import Any, Literal

from pydantic import BaseModel, Field

from tiercel.messaging import deserialize, unreachable

#: The MQTT 5 user property that carries a message's id (set by mqtt.Publish): the dedupe key.
ID_PROPERTY = "message-id"


class Connection(BaseModel):
    """Where the broker is and how to log in (mixed into every component)."""

    server: str = Field("tcp://localhost:1883", description="Broker address `tcp://host:port` (`mqtt://` works too).")
    username: str | None = Field(None, description="User name.")
    password: str | None = Field(None, description="Password; never logged.")
    version: Literal["V_3_1_1", "V_5"] = Field("V_5", description="MQTT protocol version.")

    def address(self) -> tuple[str, int]:
        parsed = urllib.parse.urlsplit(self.server if "://" in self.server else f"tcp://{self.server}")
        return parsed.hostname or "localhost", parsed.port or 1883


def failed(c: Connection, exc: BaseException) -> Exception:
    return unreachable("MQTT broker", c.server, exc)


def message_id(properties: Any) -> str | None:
    for name, value in getattr(properties, "UserProperty", None) or []:
        if name == ID_PROPERTY:
            return str(value)
    return None


def message_variables(topic: str, payload: bytes, qos: int, retain: bool, properties: Any, serde: str) -> dict[str, Any]:
    """What an execution sees of a message (``trigger.*``, or a line of a Subscribe file)."""
    user = {k: v for k, v in getattr(properties, "UserProperty", None) or []}
    return {"value": deserialize(serde, payload), "topic": topic, "qos": qos, "retain": bool(retain),
            "id": user.get(ID_PROPERTY), "properties": user}
