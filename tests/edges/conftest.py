"""Fixtures of the edge tests: the config world of tests/config (a live server, real git)."""

from tests.config.conftest import world

__all__ = ["world"]
