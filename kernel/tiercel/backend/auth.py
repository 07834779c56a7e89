"""Users, API tokens, UI sessions and the audit log.

Secrets are never stored: passwords as argon2 hashes (argon2-cffi), token secrets and session
ids as SHA-256 digests (they are 256 random bits, so a fast digest is as safe as a slow one,
and checking one costs microseconds per request). ``TIERCEL_PASSWORD_HASH=cheapest`` selects
argon2's cheapest parameters, for test suites only.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass
from typing import Any

from tiercel.backend.db import Database

#: Roles from least to most: each may do what the ones before it may.
ROLES = ("viewer", "runner", "editor", "admin")
TOKEN_PREFIX = "tct_"


class AuthError(ValueError):
    """A user or token operation that cannot be done (unknown user, bad role…); the message says why."""


@dataclass(frozen=True)
class Grant:
    """A role on a namespace and every namespace below it (``""``: all of them)."""

    role: str
    namespace: str = ""

    def covers(self, namespace: str) -> bool:
        return not self.namespace or namespace == self.namespace or namespace.startswith(self.namespace + ".")


@dataclass(frozen=True)
class Principal:
    """Who made a request: a user, a token (``token:<id>``) or, with authentication off, ``anonymous``."""

    name: str
    grants: tuple[Grant, ...]
    session: str | None = None  # the session's CSRF token when authenticated by the UI cookie

    def role_on(self, namespace: str) -> int:
        """The rank (index in ROLES) of the strongest role on *namespace*; -1 for none."""
        return max((ROLES.index(g.role) for g in self.grants if g.covers(namespace)), default=-1)

    def scopes(self, role: str = "viewer") -> list[str] | None:
        """The namespace prefixes where the principal has at least *role*; None means every namespace."""
        rank = ROLES.index(role)
        prefixes = [g.namespace for g in self.grants if ROLES.index(g.role) >= rank]
        return None if "" in prefixes else prefixes


def check_role(role: str) -> str:
    if role not in ROLES:
        raise AuthError(f"unknown role {role!r}: roles are {', '.join(ROLES)}")
    return role


def _hasher() -> Any:
    from argon2 import PasswordHasher, profiles

    if os.environ.get("TIERCEL_PASSWORD_HASH", "").lower() == "cheapest":
        return PasswordHasher.from_parameters(profiles.CHEAPEST)
    return PasswordHasher()


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class AuthStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._dummy: str | None = None

    # --- users ------------------------------------------------------------------------
    def add_user(self, name: str, password: str, role: str, namespace: str = "") -> None:
        check_role(role)
        if not name or ":" in name:
            raise AuthError(f"invalid user name {name!r}: it must be non-empty and contain no `:`")
        if self.db.one("SELECT 1 FROM users WHERE name = ?", (name,)):
            raise AuthError(f"user {name!r} already exists (change the password with `tiercel users passwd`)")
        now = time.time()
        self.db.execute(
            "INSERT INTO users (name, password_hash, role, namespace, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (name, _hasher().hash(password), role, namespace, now, now),
        )

    def set_password(self, name: str, password: str) -> None:
        if not self.db.execute(
            "UPDATE users SET password_hash = ?, updated_at = ? WHERE name = ?",
            (_hasher().hash(password), time.time(), name),
        ):
            raise AuthError(f"no user {name!r}")
        self.db.execute("DELETE FROM sessions WHERE username = ?", (name,))  # a new password ends every login

    def remove_user(self, name: str) -> None:
        if not self.db.execute("DELETE FROM users WHERE name = ?", (name,)):
            raise AuthError(f"no user {name!r}")
        self.db.execute("DELETE FROM sessions WHERE username = ?", (name,))

    def users(self) -> list[dict[str, Any]]:
        return [
            {"name": r[0], "role": r[1], "namespace": r[2], "created": r[3]}
            for r in self.db.query("SELECT name, role, namespace, created_at FROM users ORDER BY name")
        ]

    def login(self, name: str, password: str) -> Principal | None:
        """The user if *password* is theirs; the same work is done for an unknown name (no timing oracle)."""
        from argon2.exceptions import InvalidHashError, VerificationError

        row = self.db.one("SELECT password_hash, role, namespace FROM users WHERE name = ?", (name,))
        hasher = _hasher()
        if row is None:
            self._dummy = self._dummy or hasher.hash("not a password")
            stored = self._dummy
        else:
            stored = row[0]
        try:
            hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return None
        return Principal(name, (Grant(row[1], row[2]),)) if row is not None else None

    def user(self, name: str) -> Principal | None:
        row = self.db.one("SELECT role, namespace FROM users WHERE name = ?", (name,))
        return Principal(name, (Grant(row[0], row[1]),)) if row else None

    def empty(self) -> bool:
        """No user and no live token yet: nobody could log in."""
        return not self.db.one("SELECT 1 FROM users UNION ALL SELECT 1 FROM tokens WHERE revoked_at IS NULL LIMIT 1")

    # --- tokens -----------------------------------------------------------------------
    def create_token(
        self,
        role: str,
        namespace: str = "",
        name: str | None = None,
        created_by: str | None = None,
        expires_at: float | None = None,
    ) -> tuple[str, str]:
        """(token id, the token itself): the token is shown once and only its hash is kept."""
        check_role(role)
        token_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        self.db.execute(
            "INSERT INTO tokens (id, secret_hash, name, role, namespace, created_by, created_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (token_id, _digest(secret), name, role, namespace, created_by, time.time(), expires_at),
        )
        return token_id, f"{TOKEN_PREFIX}{token_id}_{secret}"

    def token(self, token: str) -> Principal | None:
        """The principal of a live token (not revoked, not expired), else None."""
        if not token.startswith(TOKEN_PREFIX):
            return None
        token_id, _, secret = token[len(TOKEN_PREFIX) :].partition("_")
        row = self.db.one(
            "SELECT secret_hash, role, namespace, expires_at, revoked_at FROM tokens WHERE id = ?", (token_id,)
        )
        if row is None or not hmac.compare_digest(row[0], _digest(secret)):
            return None
        if row[4] is not None or (row[3] is not None and row[3] < time.time()):
            return None
        return Principal(f"token:{token_id}", (Grant(row[1], row[2]),))

    def tokens(self) -> list[dict[str, Any]]:
        return [
            {
                "id": r[0],
                "name": r[1],
                "role": r[2],
                "namespace": r[3],
                "createdBy": r[4],
                "created": r[5],
                "expires": r[6],
                "revoked": r[7],
            }
            for r in self.db.query(
                "SELECT id, name, role, namespace, created_by, created_at, expires_at, revoked_at FROM tokens "
                "ORDER BY created_at"
            )
        ]

    def revoke_token(self, token_id: str) -> None:
        if not self.db.execute(
            "UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (time.time(), token_id)
        ):
            raise AuthError(f"no live token {token_id!r} (see `tiercel tokens list`)")

    # --- sessions ---------------------------------------------------------------------
    def open_session(self, username: str, lifetime: float) -> tuple[str, str]:
        """(session id for the cookie, CSRF token); only the id's hash is stored."""
        session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        now = time.time()
        self.db.execute("DELETE FROM sessions WHERE expires_at < ?", (now,))
        self.db.execute(
            "INSERT INTO sessions (id_hash, username, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
            (_digest(session_id), username, csrf, now, now + lifetime),
        )
        return session_id, csrf

    def session(self, session_id: str) -> Principal | None:
        row = self.db.one(
            "SELECT s.username, s.csrf, u.role, u.namespace FROM sessions s JOIN users u "
            "ON u.name = s.username WHERE s.id_hash = ? AND s.expires_at > ?",
            (_digest(session_id), time.time()),
        )
        return Principal(row[0], (Grant(row[2], row[3]),), session=row[1]) if row else None

    def close_session(self, session_id: str) -> None:
        self.db.execute("DELETE FROM sessions WHERE id_hash = ?", (_digest(session_id),))

    # --- audit ------------------------------------------------------------------------
    def record(
        self, actor: str, method: str, path: str, namespace: str | None, status: int, client: str | None
    ) -> None:
        self.db.execute(
            "INSERT INTO audit (ts, actor, method, path, namespace, status, client) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (time.time(), actor, method, path, namespace, status, client),
        )

    def audit(
        self,
        actor: str | None = None,
        namespace: str | None = None,
        since: float | None = None,
        scopes: list[str] | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Audit entries, newest first; *scopes* (namespace prefixes) keeps only those entries' namespaces."""
        where, params = ["1 = 1"], []
        if actor:
            where.append("actor = ?")
            params.append(actor)
        if namespace:
            where.append("(namespace = ? OR substr(namespace, 1, ?) = ?)")
            params += [namespace, len(namespace) + 1, namespace + "."]
        if since is not None:
            where.append("ts >= ?")
            params.append(since)
        if scopes is not None:
            where.append(
                "(" + " OR ".join(["namespace = ? OR substr(namespace, 1, ?) = ?"] * len(scopes) or ["1 = 0"]) + ")"
            )
            for prefix in scopes:
                params += [prefix, len(prefix) + 1, prefix + "."]
        return [
            {
                "id": r[0],
                "date": r[1],
                "actor": r[2],
                "method": r[3],
                "path": r[4],
                "namespace": r[5],
                "status": r[6],
                "client": r[7],
            }
            for r in self.db.query(
                f"SELECT id, ts, actor, method, path, namespace, status, client FROM audit WHERE {' AND '.join(where)} "
                f"ORDER BY id DESC LIMIT ?",
                [*params, limit],
            )
        ]
