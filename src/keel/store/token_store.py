"""Access tokens of the team server and its write audit, on the SQL store."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from keel.clock import now_ms
from keel.entities import Token
from keel.errors import NotFound
from keel.store import schema as t
from keel.store.base import SqlBase


class TokenStoreMixin(SqlBase):
    """Methods :class:`SqlStore` gains for the team server."""

    def create_token(self, token_id: str, secret_hash: str, project: str, role: str,
                     description: str, created_by: str, expires_at: int | None) -> Token:
        values = dict(id=token_id, hash=secret_hash, project=project, role=role,
                      description=description, created_by=created_by, created_at=now_ms(),
                      expires_at=expires_at, revoked_at=None)
        self._write(lambda conn: conn.execute(t.tokens.insert().values(**values)))
        return _token(values)

    def token_by_hash(self, secret_hash: str) -> Token | None:
        """The token whose secret hashes to ``secret_hash`` (revoked or not)."""
        with self.reader.connect() as conn:
            row = conn.execute(sa.select(t.tokens).where(t.tokens.c.hash == secret_hash)).first()
        return _token(row._mapping) if row else None

    def list_tokens(self) -> list[Token]:
        with self.reader.connect() as conn:
            rows = conn.execute(sa.select(t.tokens).order_by(t.tokens.c.created_at)).all()
        return [_token(r._mapping) for r in rows]

    def revoke_token(self, token_id: str = "", secret_hash: str = "") -> Token:
        """Revoke by id or by the secret's hash; effective on the next request."""
        column, value = (t.tokens.c.id, token_id) if token_id else (t.tokens.c.hash,
                                                                      secret_hash)

        def revoke(conn: sa.Connection) -> Any:
            conn.execute(t.tokens.update().where(column == value, t.tokens.c.revoked_at.is_(None))
                         .values(revoked_at=now_ms()))
            return conn.execute(sa.select(t.tokens).where(column == value)).first()

        row = self._write(revoke)
        if row is None:
            raise NotFound(f"no token {token_id or 'with that secret'}",
                           hint="list them with `keel token list`")
        return _token(row._mapping)

    def audit_write(self, token_id: str | None, method: str, path: str, status: int) -> None:
        """Who wrote what, when (every non-GET request of the server)."""
        self._write(lambda conn: conn.execute(t.server_audit.insert().values(
            time=now_ms(), token_id=token_id, method=method, path=path[:2000], status=status)))

    def list_audit(self, limit: int = 100) -> list[dict[str, Any]]:
        a = t.server_audit
        with self.reader.connect() as conn:
            rows = conn.execute(sa.select(a).order_by(a.c.id.desc()).limit(limit)).all()
        return [dict(r._mapping) for r in reversed(rows)]


def _token(row: Any) -> Token:
    return Token(row["id"], row["project"], row["role"], row["description"], row["created_by"],
                 row["created_at"], row["expires_at"], row["revoked_at"])
