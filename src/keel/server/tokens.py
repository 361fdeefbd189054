"""Access tokens: created once (the secret is shown once, only its SHA-256 is
stored), checked on every request, revoked at once."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from keel.clock import now_ms
from keel.entities import DEFAULT_PROJECT
from keel.errors import InvalidInput

if TYPE_CHECKING:
    from keel.entities import Token
    from keel.workspace import Workspace

# Each role can do what the roles before it can.
ROLES = ("viewer", "editor", "validator", "admin")
PREFIX = "keel_"


@dataclass(frozen=True)
class NewToken:
    """A token just made: its record and the secret, which exists only here."""

    token: Token
    secret: str


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create(ws: Workspace, role: str, project: str = DEFAULT_PROJECT, description: str = "",
           expires_seconds: float | None = None, created_by: str = "") -> NewToken:
    """A new token with ``role`` in ``project``."""
    from keel.tracking.provenance import current_user

    if role not in ROLES:
        raise InvalidInput(f"unknown role {role!r}", hint=f"roles: {', '.join(ROLES)}")
    if not re.fullmatch(r"[A-Za-z0-9][\w.-]{0,127}", project):
        raise InvalidInput(f"bad project name {project!r}",
                           hint="letters, digits, '.', '_' and '-', starting with a letter or "
                                "digit")
    if expires_seconds is not None and expires_seconds <= 0:
        raise InvalidInput("--expires must be a duration longer than 0 s")
    secret = PREFIX + secrets.token_urlsafe(32)
    token_id = secrets.token_hex(6)
    expires = now_ms() + int(expires_seconds * 1000) if expires_seconds else None
    record = ws.store.create_token(token_id, digest(secret), project, role, description,
                                   created_by or current_user(), expires)
    return NewToken(record, secret)


def check(ws: Workspace, secret: str) -> Token | None:
    """The live token for ``secret``; None if unknown, revoked or expired."""
    if not secret.startswith(PREFIX):
        return None
    found = ws.store.token_by_hash(digest(secret))
    if found is None or found.revoked_at is not None:
        return None
    if found.expires_at is not None and found.expires_at <= now_ms():
        return None
    return found


def allows(role: str, needed: str) -> bool:
    """Whether ``role`` includes ``needed``."""
    return ROLES.index(role) >= ROLES.index(needed)


def revoke(ws: Workspace, id_or_secret: str) -> Token:
    """Revoke by id, or by the secret itself."""
    if id_or_secret.startswith(PREFIX):
        return ws.store.revoke_token(secret_hash=digest(id_or_secret))
    return ws.store.revoke_token(token_id=id_or_secret)
