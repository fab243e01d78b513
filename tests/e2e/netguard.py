"""A ``sitecustomize`` for the e2e platform: every Python process records non-loopback connects.

The e2e harness puts this file's folder first on ``PYTHONPATH`` (as ``sitecustomize.py``
through a copy) so that ``klink serve``, the local cloud daemon, the instances and every Python
child they start install an audit hook on ``socket.connect``. Any address that is not loopback
(or a Unix socket) is appended to ``$KLINK_E2E_NETLOG``; the tests assert that file stays empty.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from typing import Any

_LOG = os.environ.get("KLINK_E2E_NETLOG", "")


def _loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False  # a name: it would be resolved elsewhere, so it is not loopback


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if event != "socket.connect" or not _LOG:
        return
    address = args[1]
    if not isinstance(address, tuple) or _loopback(str(address[0])):
        return
    with open(_LOG, "a") as log:
        log.write(f"{os.getpid()} {sys.argv[:3]} connect {address!r}\n")


if _LOG:
    sys.addaudithook(_hook)
