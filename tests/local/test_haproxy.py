"""HAProxy boundary: the rendered config is valid for the real haproxy; stats map to ELBv2."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from klink.providers.local import addresses
from klink.providers.local.haproxy import Backend, Server, render, target_state
from klink.providers.local.state import State


@pytest.mark.parametrize(
    ("row", "draining", "state"),
    [
        (None, False, "initial"),
        ({"status": "UP 1/2", "check_status": "INI"}, False, "initial"),
        ({"status": "MAINT", "check_status": "L7OK"}, False, "initial"),
        ({"status": "UP", "check_status": "L7OK"}, False, "healthy"),
        ({"status": "DOWN", "check_status": "L7STS"}, False, "unhealthy"),
        ({"status": "DOWN", "check_status": "L4CON"}, False, "unhealthy"),
        ({"status": "UP", "check_status": "L7OK"}, True, "draining"),
        ({"status": "DRAIN", "check_status": "L7OK"}, True, "draining"),
    ],
)
def test_target_state(row: dict[str, str] | None, draining: bool, state: str) -> None:
    assert target_state(row, draining) == state


@pytest.mark.slow
def test_rendered_config_is_valid(tmp_path: Path) -> None:
    backends = [
        Backend("hello-dev", 18080, 8080, "/healthcheck", 1000, 2, 2, {}),
        Backend(
            "api-dev",
            18081,
            9090,
            "/health?deep=1",
            500,
            3,
            2,
            {
                "i-0123": Server("127.16.0.1", False, 0, weight=256),
                "i-0456@api-dev-v002": Server(
                    "127.16.0.2", True, 2, 40, group="api-dev-v002", instance="i-0456"
                ),
                "i-0789@api-dev-v003": Server(
                    "127.16.0.3", False, 4, 0, group="api-dev-v003", instance="i-0789"
                ),
            },
            slots=4,
        ),
    ]
    text = render(backends, tmp_path / "admin.sock", tmp_path / "state")
    # Each server line carries its weight and names its instance and group (draining: 0).
    line = "server s0 127.16.0.1:9090 check inter 500 rise 3 fall 2 weight 256"
    assert f"{line}  # i-0123 group=-\n" in text
    line = "server s2 127.16.0.2:9090 check inter 500 rise 3 fall 2 weight 0"
    assert f"{line}  # i-0456 group=api-dev-v002\n" in text
    line = "server s4 127.16.0.3:9090 check inter 500 rise 3 fall 2 weight 0"
    assert f"{line}  # i-0789 group=api-dev-v003\n" in text
    # Free slots wait disabled; every backend has its slots (32 by default).
    assert "server s1 127.0.0.1:9090 check inter 500 rise 3 fall 2 disabled\n" in text
    assert "server s3 127.0.0.1:9090" in text
    assert "server s5 " not in text.split("backend api-dev")[1].split("backend")[0]
    assert text.count("server s31 127.0.0.1:8080") == 1
    (tmp_path / "haproxy.cfg").write_text(text)
    check = subprocess.run(
        ["haproxy", "-c", "-q", "-f", str(tmp_path / "haproxy.cfg")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stderr


def test_addresses_are_allocated_from_the_block_and_reused(tmp_path: Path) -> None:
    block = addresses.claim(tmp_path / "home")
    try:
        state = State()
        first = state.allocate_address(block)
        assert first in block
        state.instances["i-1"] = {"ip": first}
        second = state.allocate_address(block)
        assert second != first
        assert second in block
        del state.instances["i-1"]
        assert state.allocate_address(block) == first
    finally:
        block.release()
