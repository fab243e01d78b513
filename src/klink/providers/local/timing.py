"""Measuring a group's launch: time from ``create_group`` until every instance serves HTTP.

Shared by the launch test and ``bench/local_launch.py``, so both measure the same thing.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable

from klink.providers import base


def serves(host: str, port: int, path: str = "/healthcheck") -> bool:
    connection = http.client.HTTPConnection(host, port, timeout=1)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        json.loads(response.read())
        return response.status == 200
    except (OSError, ValueError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def time_group_launch(
    provider: base.Provider,
    name: str,
    template: str,
    size: int,
    port: int | None,
    *,
    timeout: float = 60.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Seconds until all ``size`` instances of a new group answer ``/healthcheck`` on ``port``.

    With ``port=None``: until all are ``InService`` (their processes started), which measures
    the launch machinery without the app's own start-up.
    """
    start = clock()
    provider.create_group(
        base.GroupSpec(
            name=name,
            launch_template=template,
            min_size=0,
            max_size=size,
            desired_capacity=size,
        )
    )
    done: set[str] = set()
    while clock() - start < timeout:
        group = provider.describe_group(name)
        for instance in group.instances:
            if instance.id in done or instance.lifecycle_state != base.IN_SERVICE:
                continue
            if port is None or (instance.private_ip and serves(instance.private_ip, port)):
                done.add(instance.id)
        if len(done) >= size:
            return clock() - start
        sleep(0.01)
    raise TimeoutError(f"group {name} did not serve within {timeout}s")
