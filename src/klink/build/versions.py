"""Versions: ``{major.minor}.{build number}``, the build number per app only ever going up.

A number is taken (and never given back) when a build starts, so two builds never share one,
even when the first fails. A build may instead name its own version in ``dist/VERSION``.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from klink import store
from klink.build.tables import build_numbers
from klink.names import check_version

DEFAULT_MAJOR_MINOR = "1.0"


def next_build_number(engine: Engine, app: str) -> int:
    with store.write(engine) as conn:
        row = conn.execute(
            sa.select(build_numbers.c.last_number).where(build_numbers.c.app == app)
        ).first()
        number = 1 if row is None else int(row[0]) + 1
        if row is None:
            conn.execute(build_numbers.insert().values(app=app, last_number=number))
        else:
            conn.execute(
                build_numbers.update().where(build_numbers.c.app == app).values(last_number=number)
            )
    return number


def version_of(major_minor: str | None, number: int, written: str | None = None) -> str:
    """The version of a build: what the build wrote to ``dist/VERSION``, else major.minor.N."""
    if written is not None and written.strip():
        return check_version(written.strip(), field="dist/VERSION")
    return f"{major_minor or DEFAULT_MAJOR_MINOR}.{number}"
