"""Token storage and verification. Tokens are random strings; only their SHA-256 is stored."""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from klink import store
from klink.auth.tables import tokens
from klink.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from klink.settings import private_file

ROLES = ("reader", "deployer", "admin")
_RANK = {role: rank for rank, role in enumerate(ROLES)}
PREFIX = "klk_"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's name is the actor recorded on every change.

    ``via`` names who asked on this identity's behalf when a front door (chat) acts as it:
    ``slack:T1/U123``. Rights are the identity's own; ``actor`` is what a record should show
    (``ci-bot via slack:T1/U123``).
    """

    name: str
    role: str
    envs: tuple[str, ...] | None = None  # deployer limited to these environments; None: all
    via: str | None = None

    @property
    def actor(self) -> str:
        return f"{self.name} via {self.via}" if self.via else self.name

    def has(self, role: str) -> bool:
        return _RANK[self.role] >= _RANK[role]

    def can_deploy(self, env: str) -> bool:
        if self.role == "admin":
            return True
        return self.role == "deployer" and (self.envs is None or env in self.envs)

    def require(self, role: str) -> None:
        if not self.has(role):
            raise Forbidden(f"token {self.name!r} has role {self.role!r}; this needs {role!r}")

    def require_deploy(self, env: str) -> None:
        if not self.can_deploy(env):
            raise Forbidden(f"token {self.name!r} may not change environment {env!r}")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def create_token(
    engine: Engine,
    *,
    name: str,
    role: str,
    envs: Sequence[str] | None,
    created_by: str,
    now: datetime,
) -> str:
    if role not in ROLES:
        raise InvalidInput(f"role {role!r} must be one of {', '.join(ROLES)}", field="role")
    from klink.service.runtime import INTERNAL_TOKEN_NAME

    if name == INTERNAL_TOKEN_NAME:
        raise InvalidInput(
            f"the token name {name!r} is reserved for Klink's services", field="name"
        )
    if envs is not None and role != "deployer":
        raise InvalidInput("only deployer tokens can be limited to environments", field="envs")
    token = new_token()
    exists = Conflict(f"a token named {name!r} exists", field="name", code="exists")
    try:
        with store.write(engine) as conn:
            if conn.execute(sa.select(tokens.c.id).where(tokens.c.name == name)).first():
                raise exists
            conn.execute(
                tokens.insert().values(
                    name=name,
                    token_hash=hash_token(token),
                    role=role,
                    envs=list(envs) if envs is not None else None,
                    created_by=created_by,
                    created_at=now,
                )
            )
    except Conflict:  # also a concurrent create's unique violation (PostgreSQL)
        raise exists from None
    return token


def list_tokens(engine: Engine) -> list[dict[str, object]]:
    with store.read(engine) as conn:
        rows = conn.execute(sa.select(tokens).order_by(tokens.c.name)).mappings().all()
    return [
        {
            "name": row["name"],
            "role": row["role"],
            "envs": row["envs"],
            "created_by": row["created_by"],
            "created_at": row["created_at"].isoformat() if row["created_at"] else None,
        }
        for row in rows
    ]


def delete_token(engine: Engine, name: str) -> None:
    from klink.service.runtime import INTERNAL_TOKEN_NAME

    if name == INTERNAL_TOKEN_NAME:
        # Every service-to-service call uses it; start-up replaces it when it must change.
        raise Forbidden(
            f"token {name!r} is Klink's internal service token and cannot be deleted",
            field="name",
        )
    with store.write(engine) as conn:
        result = conn.execute(tokens.delete().where(tokens.c.name == name))
    if result.rowcount == 0:
        raise NotFound(f"no token named {name!r}", field="name")


def verify(engine: Engine, token: str | None) -> Principal:
    if not token:
        raise Unauthorized("a bearer token is required (Authorization: Bearer …)")
    with store.read(engine) as conn:
        row = (
            conn.execute(sa.select(tokens).where(tokens.c.token_hash == hash_token(token)))
            .mappings()
            .first()
        )
    if row is None:
        raise Unauthorized("the token is not valid")
    envs = tuple(row["envs"]) if row["envs"] is not None else None
    return Principal(name=row["name"], role=row["role"], envs=envs)


def bootstrap_admin_token(engine: Engine, path: Path, now: datetime) -> str | None:
    """Create the first admin token when no token exists; write it to ``path`` (mode 600)."""
    from klink.service.runtime import INTERNAL_TOKEN_NAME

    with store.read(engine) as conn:
        count = conn.execute(
            sa.select(sa.func.count())
            .select_from(tokens)
            .where(tokens.c.name != INTERNAL_TOKEN_NAME)
        ).scalar_one()
    if count:
        private_file(path)  # 0600, also if an older Klink wrote it wider
        return None
    token = create_token(engine, name="admin", role="admin", envs=None, created_by="klink", now=now)
    _write_secret(path, token)
    return token


def internal_token(engine: Engine, path: Path, now: datetime) -> str:
    """The admin token services use to call each other, shared by every process of this home.

    Kept in ``path`` (mode 600) and reused while its hash is still registered, so several
    processes (the split deployment, ``klink worker``) agree on it; replaced when missing.
    """
    from klink.service.runtime import INTERNAL_TOKEN_NAME

    with store.write(engine) as conn:
        row = conn.execute(
            sa.select(tokens.c.token_hash).where(tokens.c.name == INTERNAL_TOKEN_NAME)
        ).first()
        try:
            existing = path.read_text().strip()
        except OSError:
            existing = ""
        if row is not None and existing and hash_token(existing) == row[0]:
            private_file(path)
            return existing
        token = new_token()
        values = {
            "token_hash": hash_token(token),
            "role": "admin",
            "envs": None,
            "created_by": "klink",
            "created_at": now,
        }
        if row is None:
            conn.execute(tokens.insert().values(name=INTERNAL_TOKEN_NAME, **values))
        else:
            conn.execute(
                tokens.update().where(tokens.c.name == INTERNAL_TOKEN_NAME).values(**values)
            )
        _write_secret(path, token)
    return token


def _write_secret(path: Path, secret: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    os.replace(temp, path)


# A chat user with no linked identity reads, as this name, and can do nothing else.
UNLINKED = "unlinked"


def act_as(engine: Engine, caller: Principal, identity: str | None, via: str) -> Principal:
    """The principal a front door acts as: ``identity``'s own role and environments (looked up
    now, so a changed or deleted token takes effect at once), or a reader when ``identity`` is
    empty (an unlinked chat user). Only Klink's internal token may act as someone."""
    from klink.service.runtime import INTERNAL_TOKEN_NAME

    if caller.name != INTERNAL_TOKEN_NAME:
        raise Forbidden(
            f"token {caller.name!r} may not act on someone's behalf; only Klink's services may",
            field="X-Klink-Act-As",
        )
    if not via:
        raise InvalidInput("acting on someone's behalf needs X-Klink-Via", field="X-Klink-Via")
    if not identity:
        return Principal(name=UNLINKED, role="reader", via=via)
    with store.read(engine) as conn:
        row = conn.execute(sa.select(tokens).where(tokens.c.name == identity)).mappings().first()
    if row is None or identity == INTERNAL_TOKEN_NAME:
        raise Unauthorized(f"identity {identity!r} has no token any more; link again")
    envs = tuple(row["envs"]) if row["envs"] is not None else None
    return Principal(name=row["name"], role=row["role"], envs=envs, via=via)
