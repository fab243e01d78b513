"""The canary strategy in the engine, on the FakeProvider and a FakeMetricSource: the canary and
baseline groups at their weight beside production, one judgement per interval over the
interval's own window, a failed interval undone by itself (a critical metric at once), a
marginal one paused for a person, a passed canary promoted (flip or rolling steps) with its
baseline removed, and every report stored and served."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

import pytest

from klink.config.params import parse_deployment_params
from klink.deploy.actions.discover import current_group
from klink.errors import InvalidInput
from klink.testing.fake_metric_source import FakeMetricSource
from tests.deploy.conftest import IMG1, IMG2, World, deployed, ready
from tests.deploy.test_weights import logs, until, weights

V0, V1, V2 = (
    "search-prod-v000",
    "search-prod-v001",
    "search-prod-v002",
)  # production, canary, baseline


def canary_params(**canary: Any) -> dict[str, Any]:
    return {
        "strategy": "canary",
        "desiredCapacity": 3,
        "max": 3,
        "keepWarmSeconds": 0,
        "canary": {"intervals": 3, "intervalSeconds": 60, **canary},
    }


def start(world: World, params: dict[str, Any] | None = None) -> str:
    """search/prod on v000 (a first deployment: red-black, nothing to compare with), then a
    canary of IMG2 run up to its first judgement."""
    ready(world, params or canary_params(), deploymentRooms={"prod": ["#search"]})
    world.metrics = FakeMetricSource()
    first = deployed(world, IMG1)
    assert first["status"] == "completed", first["error"]
    assert "analyse_canary" not in [s["name"] for s in first["plan"]]
    deployment_id = world.deploy(IMG2)
    until(world, deployment_id, "analyse_canary")
    return deployment_id


def canary_of(world: World, deployment_id: str) -> dict[str, Any]:
    found: dict[str, Any] = world.ok("GET", f"/deploy/deployments/{deployment_id}/canary")
    return found


def test_a_good_canary_is_judged_each_interval_then_promoted_and_its_baseline_removed(
    world: World,
) -> None:
    deployment_id = start(world)
    assert weights(world) == {V0: 80, V1: 10, V2: 10}
    assert len(world.fake.describe_group(V1).instances) == 1  # the canary, before promotion
    baseline = world.fake.describe_group(V2)
    assert len(baseline.instances) == 1
    assert baseline.tags["klink:role"] == "baseline"
    assert baseline.tags["klink:traffic"] == "web"
    assert world.fake.describe_launch_template(baseline.launch_template).image_id == IMG1
    # Discovery never takes the baseline (the newest group) for the group in service.
    found = current_group(world.fake, "search", "prod")
    assert found is not None
    assert found.name == V1
    world.engine().drain()
    d = world.get(deployment_id)
    assert d["status"] == "completed", d["error"]
    assert not d["undo"], d["error"]
    assert weights(world) == {V1: 100}
    assert world.groups() == [V1]
    assert world.fake.describe_group(V1).desired_capacity == 3  # grown when promoted
    canary = canary_of(world, deployment_id)
    assert (canary["canary"], canary["baseline"], canary["verdict"]) == (V1, V2, "pass")
    assert [r["interval"] for r in canary["reports"]] == [1, 2, 3]
    first = canary["reports"][0]["metrics"][0]
    assert first["verdict"] == "pass"
    assert first["p"] is not None
    assert first["u"] is not None
    assert len(first["canary"]["values"]) == 20  # 60 s in steps of 3 s
    # Each interval judged its own 60 s window, one after the other, for both groups; within
    # each, early looks judged the critical metric alone on what had been measured so far.
    asked = {(name, start, end) for name, _, start, end, _ in world.metrics.asked}
    windows = sorted({(s, e) for _, s, e in asked if e - s == timedelta(seconds=60)})
    assert len(windows) == 3
    assert all(b[0] >= a[1] for a, b in itertools.pairwise(windows))
    early = {(name, s) for name, s, e in asked if e - s < timedelta(seconds=60)}
    assert {name for name, _ in early} == {"error-rate"}
    assert {s for _, s in early} == {s for s, _ in windows}
    assert {group for _, group, *_ in world.metrics.asked} == {V1, V2}
    assert d["canary"]["reports"][0]["metrics"][0]["canary"].get("values") is None  # summary
    lines = logs(world, deployment_id)
    assert f"canary_traffic: traffic on web: {V1} 10, {V2} 10, {V0} 80" in lines
    assert any(line.startswith("analyse_canary: canary interval 3/3: pass") for line in lines)


def test_a_canary_answering_errors_fails_at_once_and_is_undone_by_itself(world: World) -> None:
    deployment_id = start(world)
    world.metrics.worse(V1, "error-rate", 0.05)
    mark = len(world.fake.calls)
    world.engine().drain()
    d = world.get(deployment_id)
    assert d["undo"], d["error"]
    assert d["status"] == "completed", d["error"]
    assert any("canary failed early in interval 1/3" in line for line in logs(world, deployment_id))
    canary = canary_of(world, deployment_id)
    assert canary["verdict"] == "fail"
    assert len(canary["reports"]) == 1  # a critical metric ends the canary without waiting
    assert canary["reports"][0]["criticalFailures"] == ["error-rate"]
    # The undo's first change puts all traffic back on production in one call.
    changes = [c for c in world.fake.calls[mark:] if c[0] != "describe_group"]
    assert changes[0] == ("set_traffic", "web")
    assert weights(world) == {V0: 100}
    assert world.groups() == [V0]  # canary and baseline both removed


def test_a_critical_metric_that_fails_ends_the_canary_within_its_interval(world: World) -> None:
    deployment_id = start(world, canary_params(intervals=2, intervalSeconds=120))
    world.metrics.worse(V1, "error-rate", 0.05)
    world.engine().drain()
    d = world.get(deployment_id)
    assert d["undo"], d
    assert d["status"] == "completed", d["error"]
    (report,) = canary_of(world, deployment_id)["reports"]
    assert report["early"] is True
    assert report["criticalFailures"] == ["error-rate"]
    assert [m["name"] for m in report["metrics"]] == ["error-rate"]  # the critical one alone
    assert report["metrics"][0]["alpha"] == 0.001
    judged = datetime.fromisoformat(report["end"]) - datetime.fromisoformat(report["start"])
    assert judged < timedelta(seconds=120)  # before the interval's end
    lines = logs(world, deployment_id)
    assert any("canary failed early in interval 1/2" in line for line in lines), lines


def test_a_canary_100_ms_slower_fails_on_latency(world: World) -> None:
    deployment_id = start(world)
    world.metrics.worse(V1, "latency-p50", 0.1)
    world.metrics.worse(V1, "latency-p99", 0.1)
    world.engine().drain()
    d = world.get(deployment_id)
    assert d["undo"], d["error"]
    assert d["status"] == "completed", d["error"]
    report = canary_of(world, deployment_id)["reports"][0]
    verdicts = {m["name"]: m["verdict"] for m in report["metrics"]}
    assert verdicts == {"error-rate": "pass", "latency-p50": "fail", "latency-p99": "fail"}
    assert report["verdict"] == "fail"
    assert report["score"] < 75
    assert world.groups() == [V0]


def test_a_marginal_interval_pauses_with_its_report_and_a_resume_goes_on(world: World) -> None:
    deployment_id = start(world, canary_params(intervals=2, thresholds={"marginal": 60}))
    world.metrics.worse(V1, "latency-p99", 0.1)  # one metric of three: score 66.7
    world.engine().drain()
    d = world.get(deployment_id)
    assert d["status"] == "paused", d
    assert "marginal" in d["waitingFor"]
    assert "score 66.7" in d["waitingFor"]
    assert canary_of(world, deployment_id)["verdict"] == "marginal"
    told = [
        body["event"]["text"] if "text" in body["event"] else body["text"]
        for _, body in world.notes.posted
        if isinstance(body.get("event"), dict) and body["event"]["event"] == "waiting"
    ]
    assert len(told) == 1, told
    assert "canary interval 1/2 marginal (score 66.7)" in told[0]
    assert weights(world) == {V0: 80, V1: 10, V2: 10}  # nothing moved while a person decides
    world.metrics.shifts.clear()
    world.ok("POST", "/deploy/search/prod/resume", json={"message": "p99 is a known blip"})
    world.engine().drain()
    d = world.get(deployment_id)
    assert d["status"] == "completed", d["error"]
    assert not d["undo"], d["error"]
    assert [r["verdict"] for r in canary_of(world, deployment_id)["reports"]] == [
        "marginal",
        "pass",
    ]
    assert world.groups() == [V1]


def test_undo_during_the_analysis_is_one_call_then_both_new_groups_go(world: World) -> None:
    deployment_id = start(world)
    mark = len(world.fake.calls)
    world.ok("POST", "/deploy/search/prod/undo", json={"message": "not today"})
    world.engine().drain()
    d = world.get(deployment_id)
    assert d["status"] == "completed", d["error"]
    assert d["undo"], d["error"]
    changes = [c for c in world.fake.calls[mark:] if c[0] != "describe_group"]
    assert changes[0] == ("set_traffic", "web")
    assert [c for c in changes if c[0] == "set_traffic"] == [("set_traffic", "web")]
    assert weights(world) == {V0: 100}
    assert world.groups() == [V0]


def test_a_metric_source_that_does_not_answer_is_retried(world: World) -> None:
    deployment_id = start(world, canary_params(intervals=1))
    world.metrics.down = 3
    world.engine().drain()
    d = world.get(deployment_id)
    assert d["status"] == "completed", d["error"]
    assert not d["undo"], d["error"]
    tasks = world.ok("GET", f"/deploy/deployments/{deployment_id}/tasks")["tasks"]
    analysed = [t for t in tasks if t["action"] == "analyse_canary"]
    assert analysed[0]["status"] == "done"
    retried = [line for line in logs(world, deployment_id) if "fake metric source is down" in line]
    assert len(retried) == 3, logs(world, deployment_id)


def test_a_query_the_source_refuses_fails_the_canary_before_any_group_launches(
    world: World,
) -> None:
    ready(world, canary_params(metrics=[{"name": "mine", "query": "sum(up)", "critical": True}]))
    world.metrics = FakeMetricSource(refused={"mine"})
    deployed(world, IMG1)
    d = deployed(world, IMG2)
    assert d["undo"], d
    assert "the query of metric mine is refused" in (d["error"] or "") or any(
        "the query of metric mine is refused" in line for line in logs(world, d["id"])
    )
    assert world.fake.count("create_group") == 1  # v000 only: nothing was launched
    assert weights(world) == {V0: 100}


def test_a_promotion_in_rolling_steps(world: World) -> None:
    params = {**canary_params(intervals=1), "rolling": {"steps": [{"weight": 50}, 100]}}
    deployment_id = start(world, params)
    world.engine().drain()
    d = world.get(deployment_id)
    assert d["status"] == "completed", d["error"]
    lines = logs(world, deployment_id)
    assert f"shift_traffic: traffic on web: {V1} 50, {V0} 50, {V2} 0" in lines
    assert world.groups() == [V1]


def test_a_dry_run_of_a_canary_names_its_baseline_and_changes_nothing(world: World) -> None:
    ready(world, canary_params())
    world.metrics = FakeMetricSource()
    deployed(world, IMG1)
    calls = len([c for c in world.fake.calls if c[0] != "poll"])
    body = {"image": IMG2, "message": "m", "dryRun": True}
    dry = world.ok("POST", "/deploy/search/prod", json=body)
    assert dry["groups"]["create"] == V1
    assert dry["groups"]["baseline"] == V2
    assert [s["name"] for s in dry["plan"]].count("analyse_canary") == 3
    assert len([c for c in world.fake.calls if c[0] != "poll"]) == calls
    assert world.metrics.asked == []  # nothing measured: the analysis is not a read


def test_the_canary_plan_launches_both_groups_side_by_side(world: World) -> None:
    deployment_id = start(world, canary_params(intervals=2))
    plan = [(s["name"], s["args"]) for s in world.get(deployment_id)["plan"]]
    names = [name for name, _ in plan]
    launch = names.index("create_group")
    assert plan[launch] == ("create_group", {"size": 1})
    assert plan[launch + 1] == ("create_group", {"group": "baseline"})
    assert names.count("analyse_canary") == 2
    promote = names.index("shift_traffic")
    assert names.index("canary_traffic") < names.index("analyse_canary") < promote
    removal = [n for n, args in plan[promote:] if args.get("group") == "baseline"]
    assert removal[:2] == ["detach_traffic", "suspend_old_processes"]
    assert "delete_old_group" in removal


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"strategy": "redblack", "canary": {}}, "canary", "strategy canary"),
        ({"strategy": "canary", "canary": {"instances": 0}}, "canary.instances", "greater"),
        ({"strategy": "canary", "canary": {"weight": 60}}, "canary.weight", "less than"),
    ],
)
def test_canary_settings_are_checked_with_the_strategy(
    params: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_deployment_params(params, provider="local")
    assert field in str(caught.value)
    assert message in str(caught.value)


def test_canary_and_rolling_together_are_accepted() -> None:
    parsed = parse_deployment_params(
        {"strategy": "canary", "canary": {}, "rolling": {"steps": [50, 100]}}, provider="local"
    )
    assert parsed.canary is not None
    assert parsed.rolling is not None


class WorldApi:
    """The CLI's ``Api.call`` over the test client (the same JSON the server sends)."""

    def __init__(self, world: World) -> None:
        self.world = world

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.world.ok(method, path, **kwargs)


def test_klink_watch_shows_each_judgement_as_a_table(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    from klink.cli.canary import show
    from klink.cli.deploy import follow

    deployment_id = start(world)
    world.metrics.worse(V1, "error-rate", 0.05)
    world.engine().drain()
    code = follow(WorldApi(world), deployment_id, as_json=False, poll=0)  # type: ignore[arg-type]
    out = capsys.readouterr().out
    assert code == 0  # the undo completed
    table = out[out.index("\ninterval 1/3 (") + 1 :].splitlines()
    assert "fail" in table[0]
    assert "critical metric failed: error-rate" in table[0]
    assert table[1].split()[:2] == ["METRIC", "BASELINE"]
    row = next(line for line in table if line.startswith("error-rate (critical)"))
    assert row.split()[-1] == "fail"
    show(canary_of(world, deployment_id))
    shown = capsys.readouterr().out
    assert shown.startswith(f"canary {V1} against baseline {V2}, 10% each, 3 x 60 s: fail")


def test_a_rollback_skips_the_canary(world: World) -> None:
    deployment_id = start(world, canary_params(intervals=1))
    world.engine().drain()
    assert world.get(deployment_id)["status"] == "completed"
    answer = world.ok("POST", "/deploy/search/prod/rollback", json={"message": "back"})
    world.engine().drain()
    d = world.get(answer["id"])
    assert d["status"] == "completed", d["error"]
    assert d["image"] == IMG1
    names = [s["name"] for s in d["plan"]]
    assert "analyse_canary" not in names
    assert "canary_traffic" not in names
    assert d["canary"] is None
    assert any("a rollback skips the canary" in line for line in logs(world, d["id"]))
