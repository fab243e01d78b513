"""Each local cloud's own block of loopback addresses, so that clouds on one machine never meet.

All of 127.0.0.0/8 reaches the loopback interface on Linux; Klink's instances live in
127.16.0.0/12, cut into blocks of 1,024 addresses (/22). A local cloud claims one block for its
life with an exclusive ``flock`` on a machine-wide lock file (released by the kernel when the
daemon dies, so a crash leaves nothing to clean), and an address is used only when no socket on
this machine is bound to it (``/proc/net/tcp``). Two platforms, two users, or a test run beside
a running quickstart each get their own block. A restarted daemon prefers the block its
instances already live in, so re-adopted instances keep their addresses.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import ipaddress
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from klink.errors import ProviderError

POOL = ipaddress.IPv4Network("127.16.0.0/12")
BLOCK_PREFIX = 22
BLOCKS: list[ipaddress.IPv4Network] = list(POOL.subnets(new_prefix=BLOCK_PREFIX))
_PROC_NET = ("/proc/net/tcp", "/proc/net/udp")


def lock_dir() -> Path:
    """Machine-wide, shared by every user (sticky like /tmp): ``$TMPDIR/klink-address-blocks``."""
    path = Path(os.environ.get("KLINK_ADDRESS_LOCKS") or tempfile.gettempdir())
    path = path / "klink-address-blocks"
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            path.chmod(0o1777)
    return path


def bound_addresses(files: Iterable[str] = _PROC_NET) -> set[str]:
    """Every IPv4 address some socket on this machine is bound to (any state)."""
    found: set[str] = set()
    for name in files:
        try:
            lines = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) < 2:
                continue
            hex_address = parts[1].split(":", 1)[0]
            try:
                found.add(str(ipaddress.IPv4Address(int(hex_address, 16).to_bytes(4, "little"))))
            except ValueError:
                continue
    return found


class AddressBlock:
    """A claimed block: ``allocate(used)`` gives a free address in it."""

    def __init__(self, network: ipaddress.IPv4Network, handle: IO[bytes] | None) -> None:
        self.network = network
        self._handle = handle

    def __contains__(self, address: str) -> bool:
        try:
            return ipaddress.IPv4Address(address) in self.network
        except ValueError:
            return False

    def allocate(self, used: Iterable[str]) -> str:
        taken = set(used) | bound_addresses()
        for host in self.network.hosts():
            text = str(host)
            if text.endswith((".0", ".255")) or text in taken:
                continue
            return text
        raise ProviderError(f"no free loopback address left in {self.network}")

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def _start(home: Path) -> int:
    digest = hashlib.sha256(str(home.resolve()).encode()).digest()
    return int.from_bytes(digest[:4], "big") % len(BLOCKS)


def _try_lock(network: ipaddress.IPv4Network) -> IO[bytes] | None:
    path = lock_dir() / f"{network.network_address}-{network.prefixlen}.lock"
    handle = open(path, "ab")  # noqa: SIM115 - held open for the cloud's life
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    with contextlib.suppress(OSError):
        path.chmod(0o666)
    return handle


def claim(home: Path, in_use: Iterable[str] = ()) -> AddressBlock:
    """Claim a block for the cloud in ``home``: the one its instances (``in_use``) live in when
    it is free, else the first free one from a start that depends on ``home``."""
    preferred: list[ipaddress.IPv4Network] = []
    for address in in_use:
        for network in BLOCKS:
            if ipaddress.IPv4Address(address) in network and network not in preferred:
                preferred.append(network)
    start = _start(home)
    order = preferred + [BLOCKS[(start + i) % len(BLOCKS)] for i in range(len(BLOCKS))]
    bound = bound_addresses()
    mine = set(in_use)
    for network in order:
        handle = _try_lock(network)
        if handle is None:
            continue
        foreign = {a for a in bound - mine if ipaddress.IPv4Address(a) in network}
        if foreign and network not in preferred:
            handle.close()
            continue
        return AddressBlock(network, handle)
    raise ProviderError(f"every block of loopback addresses in {POOL} is taken")
