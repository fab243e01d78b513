"""Who a chat user is: one-time link codes, the links they confirm, and events already seen.

``/klink link`` in a room issues a code to that chat user (shown to them only, stored hashed,
valid ten minutes, usable once); ``klink chat link CODE`` sends it with the person's own token,
which links the chat user to that token's identity. From then on the chat service acts as that
identity, whose role and environments the auth layer looks up on every request.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from klink import store
from klink.chat.tables import chat_codes, chat_events, chat_links
from klink.errors import InvalidInput

CODE_LIFETIME = timedelta(minutes=10)
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud, typed by hand


def _hash(code: str) -> str:
    return hashlib.sha256(code.strip().upper().encode()).hexdigest()


def issue_code(engine: Engine, chat_user: str, now: datetime) -> str:
    code = "".join(secrets.choice(_ALPHABET) for _ in range(8))
    with store.write(engine) as conn:
        conn.execute(chat_codes.delete().where(chat_codes.c.expires_at < now))
        conn.execute(chat_codes.delete().where(chat_codes.c.chat_user == chat_user))
        conn.execute(
            chat_codes.insert().values(
                code_hash=_hash(code), chat_user=chat_user, expires_at=now + CODE_LIFETIME
            )
        )
    return f"{code[:4]}-{code[4:]}"


def confirm(engine: Engine, code: str, identity: str, now: datetime) -> str:
    """Link the chat user the code was issued to; return that chat user. Used once."""
    digest = _hash(code.replace("-", ""))
    with store.write(engine) as conn:
        row = conn.execute(sa.select(chat_codes).where(chat_codes.c.code_hash == digest)).first()
        if row is None or row.expires_at < now:
            raise InvalidInput(
                "no such link code, or it expired; run `/klink link` again", field="code"
            )
        conn.execute(chat_codes.delete().where(chat_codes.c.code_hash == digest))
        conn.execute(chat_links.delete().where(chat_links.c.chat_user == row.chat_user))
        conn.execute(
            chat_links.insert().values(chat_user=row.chat_user, identity=identity, linked_at=now)
        )
    return str(row.chat_user)


def identity_of(engine: Engine, chat_user: str) -> str | None:
    with store.read(engine) as conn:
        value = conn.execute(
            sa.select(chat_links.c.identity).where(chat_links.c.chat_user == chat_user)
        ).scalar()
    return str(value) if value is not None else None


def unlink(engine: Engine, chat_user: str) -> bool:
    with store.write(engine) as conn:
        return bool(
            conn.execute(chat_links.delete().where(chat_links.c.chat_user == chat_user)).rowcount
        )


def first_time(engine: Engine, event_id: str, now: datetime) -> bool:
    """Record ``event_id``; False when it was recorded before (a retry, not run again)."""
    with store.write(engine) as conn:
        conn.execute(chat_events.delete().where(chat_events.c.seen_at < now - timedelta(days=2)))
        seen = conn.execute(
            sa.select(chat_events.c.event_id).where(chat_events.c.event_id == event_id)
        ).first()
        if seen is not None:
            return False
        conn.execute(chat_events.insert().values(event_id=event_id, seen_at=now))
    return True
