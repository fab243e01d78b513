"""A ``sitecustomize`` that refuses every non-loopback connect and name lookup in its process.

The fuzzed server runs with a copy of this file first on ``PYTHONPATH``: whatever a generated
request makes Klink try (an environment that names an AWS region, an endpoint URL of any host),
no packet leaves the machine, not even a DNS query. A refused attempt raises ``OSError`` inside
the server, which must still answer with a proper error (never a 5xx the fuzzer would report),
and is noted in ``$KLINK_NETBLOCK_LOG`` for the test to show.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from typing import Any

_LOG = os.environ.get("KLINK_NETBLOCK_LOG", "")


def _loopback(host: object) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    text = str(host)
    if text in ("localhost", "", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(text.split("%")[0]).is_loopback
    except ValueError:
        return False


def _refuse(what: str, target: object) -> None:
    if _LOG:
        with open(_LOG, "a") as log:
            log.write(f"{os.getpid()} {sys.argv[:3]} {what} {target!r}\n")
    raise PermissionError(f"non-loopback {what} refused in tests: {target!r}")


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if event == "socket.connect":
        address = args[1]
        if isinstance(address, tuple) and not _loopback(address[0]):
            _refuse("connect", address)
    elif event in ("socket.getaddrinfo", "socket.gethostbyname") and not _loopback(args[0]):
        _refuse("getaddrinfo", args[0])


if _LOG:
    sys.addaudithook(_hook)
