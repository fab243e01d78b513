"""Applications and environments in the database, every change kept in ``metadata_history``.

Each change is one transaction: the record and its history row land together or not at all,
and a value is checked (``keys.check_record``) before anything is written.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from klink import store
from klink.errors import Conflict, NotFound
from klink.metadata import keys
from klink.metadata.tables import applications, environments, history
from klink.names import check_name

KINDS = ("application", "environment")
_TABLES = {"application": applications, "environment": environments}


@dataclass(frozen=True)
class Record:
    kind: str
    name: str
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "metadata": self.metadata,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


def _record(kind: str, row: Any) -> Record:
    return Record(kind, row["name"], dict(row["metadata"]), row["created_at"], row["updated_at"])


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


class MetadataStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _get(self, conn: Connection, kind: str, name: str) -> Record:
        table = _TABLES[kind]
        row = conn.execute(sa.select(table).where(table.c.name == name)).mappings().first()
        if row is None:
            raise NotFound(f"no {kind} named {name!r}", field=kind)
        return _record(kind, row)

    def get(self, kind: str, name: str) -> Record:
        check_name(name, kind)
        with store.read(self.engine) as conn:
            return self._get(conn, kind, name)

    def all(self, kind: str, where: tuple[str, Any] | None = None) -> list[Record]:
        table = _TABLES[kind]
        with store.read(self.engine) as conn:
            rows = conn.execute(sa.select(table).order_by(table.c.name)).mappings().all()
        records = [_record(kind, row) for row in rows]
        if where is not None:
            key, value = where
            records = [r for r in records if key in r.metadata and _same(r.metadata[key], value)]
        return records

    def _history(
        self,
        conn: Connection,
        kind: str,
        name: str,
        key: str | None,
        old: Any,
        new: Any,
        actor: str,
        at: datetime,
    ) -> None:
        conn.execute(
            history.insert().values(
                kind=kind, name=name, key=key, old=old, new=new, actor=actor, at=at
            )
        )

    def put(
        self, kind: str, name: str, metadata: Mapping[str, Any], *, actor: str, at: datetime
    ) -> tuple[Record, bool]:
        """Create ``name`` or replace its whole metadata (the documented upsert); returns
        (record, created). A create that loses a race to another becomes a replace."""
        check_name(name, kind)
        metadata = dict(metadata)
        keys.check_record(kind, metadata)
        try:
            return self._put(kind, name, metadata, actor=actor, at=at)
        except Conflict:
            return self._put(kind, name, metadata, actor=actor, at=at)

    def _put(
        self, kind: str, name: str, metadata: dict[str, Any], *, actor: str, at: datetime
    ) -> tuple[Record, bool]:
        table = _TABLES[kind]
        with store.write(self.engine) as conn:
            row = conn.execute(sa.select(table).where(table.c.name == name)).mappings().first()
            if row is None:
                return self._insert(conn, kind, name, metadata, actor, at), True
            old = dict(row["metadata"])
            changed = False
            for key in sorted(set(old) | set(metadata)):
                if key not in metadata or key not in old or not _same(old[key], metadata[key]):
                    self._history(conn, kind, name, key, old.get(key), metadata.get(key), actor, at)
                    changed = True
            if changed:
                conn.execute(
                    table.update()
                    .where(table.c.name == name)
                    .values(metadata=metadata, updated_at=at)
                )
            return self._get(conn, kind, name), False

    def _insert(
        self,
        conn: Connection,
        kind: str,
        name: str,
        metadata: dict[str, Any],
        actor: str,
        at: datetime,
    ) -> Record:
        conn.execute(
            _TABLES[kind]
            .insert()
            .values(name=name, metadata=metadata, created_at=at, updated_at=at)
        )
        self._history(conn, kind, name, None, None, metadata, actor, at)
        return self._get(conn, kind, name)

    def create(
        self, kind: str, name: str, metadata: Mapping[str, Any], *, actor: str, at: datetime
    ) -> Record:
        """Create ``name`` in one transaction; Conflict (409, field ``name``) if it exists,
        also when another transaction inserted it a moment before (a unique violation)."""
        check_name(name, kind)
        metadata = dict(metadata)
        keys.check_record(kind, metadata)
        table = _TABLES[kind]
        exists = Conflict(f"{kind} {name!r} exists", field="name", code="exists")
        try:
            with store.write(self.engine) as conn:
                if conn.execute(sa.select(table.c.name).where(table.c.name == name)).first():
                    raise exists
                return self._insert(conn, kind, name, metadata, actor, at)
        except Conflict:
            raise exists from None

    def delete(self, kind: str, name: str, *, actor: str, at: datetime) -> None:
        check_name(name, kind)
        table = _TABLES[kind]
        with store.write(self.engine) as conn:
            record = self._get(conn, kind, name)
            conn.execute(table.delete().where(table.c.name == name))
            self._history(conn, kind, name, None, record.metadata, None, actor, at)

    def set_key(
        self, kind: str, name: str, key: str, value: Any, *, actor: str, at: datetime
    ) -> Record:
        check_name(name, kind)
        keys.check_key(key)
        keys.check_value(kind, key, value)
        table = _TABLES[kind]
        with store.write(self.engine) as conn:
            record = self._get(conn, kind, name)
            if key in record.metadata and _same(record.metadata[key], value):
                return record
            metadata = {**record.metadata, key: value}
            keys.check_record(kind, metadata)
            conn.execute(
                table.update().where(table.c.name == name).values(metadata=metadata, updated_at=at)
            )
            self._history(conn, kind, name, key, record.metadata.get(key), value, actor, at)
            return self._get(conn, kind, name)

    def delete_key(self, kind: str, name: str, key: str, *, actor: str, at: datetime) -> Record:
        check_name(name, kind)
        keys.check_key(key)
        table = _TABLES[kind]
        with store.write(self.engine) as conn:
            record = self._get(conn, kind, name)
            if key not in record.metadata:
                raise NotFound(f"{kind} {name!r} has no key {key!r}", field="key")
            metadata = {k: v for k, v in record.metadata.items() if k != key}
            keys.check_record(kind, metadata)
            conn.execute(
                table.update().where(table.c.name == name).values(metadata=metadata, updated_at=at)
            )
            self._history(conn, kind, name, key, record.metadata[key], None, actor, at)
            return self._get(conn, kind, name)

    def history(self, kind: str, name: str, limit: int = 1000) -> list[dict[str, Any]]:
        check_name(name, kind)
        with store.read(self.engine) as conn:
            rows = (
                conn.execute(
                    sa.select(history)
                    .where(history.c.kind == kind, history.c.name == name)
                    .order_by(history.c.id.desc())
                    .limit(limit)
                )
                .mappings()
                .all()
            )
        return [
            {
                "key": row["key"],
                "old": row["old"],
                "new": row["new"],
                "actor": row["actor"],
                "at": row["at"].isoformat(),
            }
            for row in rows
        ]
