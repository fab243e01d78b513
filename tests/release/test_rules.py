"""The release rules as tables: when a deployment requested at a time may go, and which
settings are refused when set (through the metadata API: 400 naming the key and the reason)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from starlette.testclient import TestClient

from klink.deploy import rules

LONDON = {"days": ["Mon-Fri"], "from": "09:00", "to": "17:00", "timezone": "Europe/London"}
NIGHT = {"days": ["Sat"], "from": "22:00", "to": "02:00", "timezone": "America/New_York"}
FREEZE = {"from": "2026-12-24T00:00:00+01:00", "to": "2026-12-28T00:00:00Z", "reason": "holidays"}

# (case, metadata, requested at, may go at, why it waits)
OPENINGS: list[tuple[str, dict[str, Any], str, str, str]] = [
    ("no rules", {}, "2026-03-01T12:00:00Z", "2026-03-01T12:00:00Z", ""),
    ("inside", {"windows": [LONDON]}, "2026-03-02T12:00:00Z", "2026-03-02T12:00:00Z", ""),
    (
        "weekend",
        {"windows": [LONDON]},
        "2026-03-01T12:00:00Z",
        "2026-03-02T09:00:00Z",
        "window opens Mon 09:00 Europe/London",
    ),
    (
        "after hours",
        {"windows": [LONDON]},
        "2026-03-03T17:00:00Z",
        "2026-03-04T09:00:00Z",
        "window opens Wed 09:00 Europe/London",
    ),
    (
        "summer time: 09:00 in London is 08:00 UTC",
        {"windows": [LONDON]},
        "2026-06-06T12:00:00Z",
        "2026-06-08T08:00:00Z",
        "window opens Mon 09:00 Europe/London",
    ),
    (
        "a window across midnight, still open on the next day",
        {"windows": [NIGHT]},
        "2026-03-08T06:30:00Z",  # Sun 01:30 in New York (summer time starts at 02:00)
        "2026-03-08T06:30:00Z",
        "",
    ),
    (
        "a freeze ends, then the window",
        {"windows": [LONDON], "freezes": [FREEZE]},
        "2026-12-24T10:00:00Z",
        "2026-12-28T09:00:00Z",
        "frozen: holidays; opens Mon 09:00 Europe/London",
    ),
    (
        "a freeze alone",
        {"freezes": [FREEZE]},
        "2026-12-23T23:00:00Z",
        "2026-12-28T00:00:00Z",
        "frozen: holidays; opens Mon 00:00 UTC",
    ),
    ("after a freeze", {"freezes": [FREEZE]}, "2026-12-28T00:00:00Z", "2026-12-28T00:00:00Z", ""),
    (
        "more than a week away shows the date",
        {"freezes": [{**FREEZE, "to": "2027-01-10T00:00:00Z"}]},
        "2026-12-24T00:00:00Z",
        "2027-01-10T00:00:00Z",
        "frozen: holidays; opens Sun 2027-01-10 00:00 UTC",
    ),
]


@pytest.mark.parametrize(
    ("metadata", "requested", "goes", "why"),
    [c[1:] for c in OPENINGS],
    ids=[c[0] for c in OPENINGS],
)
def test_opening(metadata: dict[str, Any], requested: str, goes: str, why: str) -> None:
    opening = rules.of(metadata).opening(datetime.fromisoformat(requested))
    assert opening.at == datetime.fromisoformat(goes)
    assert opening.reason == why
    assert opening.now == (not why)


def test_approvals_defaults() -> None:
    found = rules.approvals({})
    assert found == rules.Approvals(1, ("deployer",), True, None)
    assert rules.approvals({"expiresAfter": "90m", "roles": ["admin", "deployer"]}) == (
        rules.Approvals(1, ("admin", "deployer"), True, 5400.0)
    )
    assert found.who("prod") == "deployer on prod"


# (case, key, value, what the message says)
REFUSED: list[tuple[str, str, Any, str]] = [
    ("approvals not an object", "approvals", 2, "approvals must be an object"),
    ("no approvers", "approvals", {"required": 0}, "approvals.required must be between 1"),
    ("too many", "approvals", {"required": 11}, "approvals.required must be between 1 and 10"),
    ("required as text", "approvals", {"required": "2"}, "approvals.required must be a whole"),
    ("unknown role", "approvals", {"roles": ["boss"]}, "approvals.roles must be a non-empty"),
    ("no roles", "approvals", {"roles": []}, "approvals.roles must be a non-empty"),
    ("flag", "approvals", {"notTheRequester": "yes"}, "approvals.notTheRequester must be"),
    ("duration", "approvals", {"expiresAfter": "4 hours"}, "approvals.expiresAfter must be"),
    ("zero duration", "approvals", {"expiresAfter": "0h"}, "approvals.expiresAfter must be"),
    ("typo", "approvals", {"require": 2}, "approvals.require is not a known setting"),
    ("no windows", "windows", [], "windows must be a non-empty list"),
    ("day", "windows", [{**LONDON, "days": ["Funday"]}], "windows[0].days: 'Funday' is not a day"),
    ("no days", "windows", [{**LONDON, "days": []}], "windows[0].days must be a non-empty"),
    ("time", "windows", [{**LONDON, "from": "9am"}], "windows[0].from must be a 24-hour time"),
    ("hour 24", "windows", [{**LONDON, "to": "24:00"}], "windows[0].to must be a 24-hour time"),
    ("empty", "windows", [{**LONDON, "to": "09:00"}], "windows[0]: from and to are the same"),
    (
        "zone",
        "windows",
        [LONDON, {**LONDON, "timezone": "Mars/Olympus"}],
        "windows[1].timezone 'Mars/Olympus' is not an IANA time zone",
    ),
    ("zone path", "windows", [{**LONDON, "timezone": "../etc"}], "must be an IANA time zone"),
    ("freeze not a list", "freezes", {"from": "x"}, "freezes must be a list"),
    (
        "no zone",
        "freezes",
        [{**FREEZE, "from": "2026-12-24T00:00:00"}],
        "freezes[0].from must be an ISO 8601 time with a zone",
    ),
    ("not a time", "freezes", [{**FREEZE, "to": "Christmas"}], "freezes[0].to must be an ISO 8601"),
    (
        "backwards",
        "freezes",
        [{**FREEZE, "to": "2026-12-01T00:00:00Z"}],
        "freezes[0].to must be after",
    ),
    ("no reason", "freezes", [{**FREEZE, "reason": " "}], "freezes[0].reason must say why"),
    ("promotesFrom", "promotesFrom", "Staging", "promotesFrom must be the name of an environment"),
]


@pytest.mark.parametrize(
    ("key", "value", "says"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED]
)
def test_bad_settings_are_refused_when_set(
    client: TestClient, key: str, value: Any, says: str
) -> None:
    assert (
        client.put(
            "/metadata/environments/prod", json={"metadata": {"provider": "local"}}
        ).status_code
        < 300
    )
    response = client.put(f"/metadata/environments/prod/{key}", json={"value": value})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["field"] == key
    assert says in error["message"], error["message"]
    assert key not in client.get("/metadata/environments/prod").json()["metadata"]
    # A whole record with the bad value is refused too.
    whole = client.put(
        "/metadata/environments/prod", json={"metadata": {"provider": "local", key: value}}
    )
    assert whole.status_code == 400
    assert whole.json()["error"]["field"] == key


GOOD: list[tuple[str, Any]] = [
    ("approvals", {"required": 2, "roles": ["deployer", "admin"], "expiresAfter": "4h"}),
    ("windows", [LONDON, NIGHT, {**LONDON, "days": ["sat", "Sun"]}]),
    ("freezes", [FREEZE]),
    ("freezes", []),
    ("promotesFrom", "staging"),
]


@pytest.mark.parametrize(("key", "value"), GOOD, ids=[f"{k}-{i}" for i, (k, _) in enumerate(GOOD)])
def test_good_settings_are_kept(client: TestClient, key: str, value: Any) -> None:
    client.put("/metadata/environments/prod", json={"metadata": {"provider": "local"}})
    response = client.put(f"/metadata/environments/prod/{key}", json={"value": value})
    assert response.status_code < 300, response.text
    assert client.get("/metadata/environments/prod").json()["metadata"][key] == value
