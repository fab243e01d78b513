"""The build service's one table: each app's last build number, which only goes up."""

from __future__ import annotations

import sqlalchemy as sa

from klink.store import METADATA

build_numbers = sa.Table(
    "build_numbers",
    METADATA,
    sa.Column("app", sa.String(32), primary_key=True),
    sa.Column("last_number", sa.Integer, nullable=False),
)
