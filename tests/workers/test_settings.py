"""The settings of several engines: read once, a bad value named (issue 19)."""

from __future__ import annotations

import pytest

from klink.errors import SettingsError
from klink.settings import Settings


def test_stuck_limit_and_worker_metrics_are_read() -> None:
    settings = Settings.from_env(
        {
            "KLINK_HOME": "/tmp/k",
            "KLINK_STUCK_SECONDS": "90",
            "KLINK_WORKER_METRICS": "127.0.0.1:9464",
        }
    )
    assert settings.stuck_seconds == 90.0
    assert settings.worker_metrics_listen == "127.0.0.1:9464"
    defaults = Settings.from_env({"KLINK_HOME": "/tmp/k"})
    assert defaults.stuck_seconds == 600.0
    assert defaults.worker_metrics_listen == ""


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("KLINK_STUCK_SECONDS", "-5"),
        ("KLINK_STUCK_SECONDS", "soon"),
        ("KLINK_WORKER_METRICS", "9464"),
    ],
)
def test_a_bad_value_names_its_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"KLINK_HOME": "/tmp/k", name: value})
    assert raised.value.field == name
