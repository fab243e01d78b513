"""Targets, schedules and job coalescing: tables of cases, no processes."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from klink.bake.schedule import Schedule, check_cron, next_time
from klink.bake.targets import choose, targets_of
from klink.build.jobs import Job, JobRegistry
from klink.errors import InvalidInput, NotFound, SettingsError

ENVS = [
    {
        "name": "prod",
        "metadata": {"provider": "aws", "region": "eu-west-1", "account_id": "1" * 12},
    },
    {
        "name": "test",
        "metadata": {"provider": "aws", "region": "eu-west-1", "account_id": "2" * 12},
    },
    {"name": "dev", "metadata": {"provider": "local"}},
    {"name": "odd", "metadata": {"provider": "aws"}},  # no region: no target
]


def test_targets_come_from_the_environments() -> None:
    targets = targets_of(ENVS)
    assert list(targets) == ["aws:eu-west-1", "local"]
    aws = targets["aws:eu-west-1"]
    assert list(aws.envs) == ["prod", "test"]
    assert aws.first_env[0] == "prod"
    assert aws.account_ids == ["1" * 12, "2" * 12]
    assert aws.region == "eu-west-1"
    assert targets["local"].provider == "local"


@pytest.mark.parametrize(
    ("envs", "requested", "chosen", "error"),
    [
        (ENVS, "local", "local", None),
        (ENVS, "aws:eu-west-1", "aws:eu-west-1", None),
        (ENVS, "aws", "aws:eu-west-1", None),  # the one aws target
        (ENVS, None, None, "several targets; choose one with --target: aws:eu-west-1, local"),
        (ENVS, "aws:mars-1", None, "not one of the environments' targets"),
        (ENVS[2:3], None, "local", None),
        ([], None, None, "no environment exists"),
    ],
)
def test_choose_target(
    envs: list[dict[str, Any]], requested: str | None, chosen: str | None, error: str | None
) -> None:
    if error is None:
        assert choose(requested, targets_of(envs)).name == chosen
    else:
        with pytest.raises(InvalidInput, match=error) as caught:
            choose(requested, targets_of(envs))
        assert caught.value.field == "target"


def test_schedule_runs_due_entries_once_and_keeps_going_after_a_failure() -> None:
    now = datetime(2026, 11, 29, 3, 59, tzinfo=UTC)  # a Sunday
    ran: list[str] = []

    def broken() -> None:
        ran.append("broken")
        raise RuntimeError("boom")

    schedule = Schedule(clock=lambda: now)
    schedule.add("base", "0 4 * * 1", lambda: ran.append("base"))  # Mondays 04:00
    schedule.add("broken", "* * * * *", broken)
    assert schedule.entries[0].due == datetime(2026, 11, 30, 4, 0, tzinfo=UTC)
    assert schedule.run_due(now) == []
    assert schedule.seconds_to_next(now) == 60.0
    assert schedule.run_due(now + timedelta(minutes=1)) == ["broken"]
    assert schedule.run_due(now + timedelta(minutes=1)) == []
    monday = datetime(2026, 11, 30, 4, 0, 30, tzinfo=UTC)
    assert schedule.run_due(monday) == ["base", "broken"]
    assert schedule.run_due(monday) == []
    assert ran == ["broken", "base", "broken"]
    assert schedule.entries[0].due == datetime(2026, 12, 7, 4, 0, tzinfo=UTC)


def test_cron_expressions_are_checked() -> None:
    assert check_cron("0 4 * * 1", "KLINK_BAKE_BASE_SCHEDULE") == "0 4 * * 1"
    with pytest.raises(SettingsError) as caught:
        check_cron("every monday", "KLINK_BAKE_BASE_SCHEDULE")
    assert caught.value.field == "KLINK_BAKE_BASE_SCHEDULE"
    assert next_time("17 * * * *", datetime(2026, 1, 1, 10, 20, tzinfo=UTC)).minute == 17


def test_identical_jobs_coalesce_and_different_keys_do_not() -> None:
    registry = JobRegistry()
    release = threading.Event()
    calls: list[str] = []

    def work(name: str) -> Any:
        def run(job: Job) -> dict[str, Any]:
            calls.append(name)
            job.log(f"working on {name}")
            release.wait(10)
            return {"name": name}

        return run

    first, joined_first = registry.start(("bake", "a"), work("a"))
    second, joined_second = registry.start(("bake", "a"), work("a-again"))
    other, joined_other = registry.start(("bake", "b"), work("b"))
    assert (joined_first, joined_second, joined_other) == (False, True, False)
    assert second is first
    assert other is not first
    release.set()
    assert first.wait(10)
    assert other.wait(10)
    events = list(second.events())
    assert events == [{"log": "working on a"}, {"result": {"name": "a"}}]
    assert sorted(calls) == ["a", "b"]
    # Once finished, the same key starts a new job.
    third, joined_third = registry.start(("bake", "a"), work("a3"))
    assert not joined_third
    assert third.wait(10)


def test_a_failed_job_ends_with_one_error_event() -> None:
    registry = JobRegistry()

    def work(job: Job) -> dict[str, Any]:
        job.log("looking")
        raise NotFound("no base image", field="base_image")

    job, _ = registry.start("k", work)
    assert job.wait(10)
    events = list(job.events())
    assert events[-1] == {
        "error": {"code": "not_found", "message": "no base image", "field": "base_image"}
    }
    assert events[0] == {"log": "looking"}


def test_a_bad_base_schedule_is_a_settings_error_naming_the_variable() -> None:
    from klink.settings import Settings

    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"KLINK_HOME": "/nonexistent", "KLINK_BAKE_BASE_SCHEDULE": "weekly"})
    assert caught.value.field == "KLINK_BAKE_BASE_SCHEDULE"
    settings = Settings.from_env({"KLINK_HOME": "/x", "KLINK_BAKE_BASE_SCHEDULE": "0 5 * * *"})
    assert settings.bake_base_schedule == "0 5 * * *"


def test_a_quiet_job_sends_heartbeats() -> None:
    registry = JobRegistry()
    release = threading.Event()

    def work(job: Job) -> dict[str, Any]:
        release.wait(10)
        return {"done": True}

    job, _ = registry.start("quiet", work)
    body = job.ndjson(poll=0.01)
    assert next(body) == b"\n"
    release.set()
    assert b"".join(body).strip().splitlines()[-1] == b'{"result": {"done": true}}'
