"""Local clouds on one machine each take their own block of loopback addresses."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
from pathlib import Path

from klink.providers.local import addresses


def test_two_clouds_never_share_a_block(tmp_path: Path) -> None:
    first = addresses.claim(tmp_path / "a")
    second = addresses.claim(tmp_path / "a")  # the same home twice: still two blocks
    try:
        assert first.network != second.network
        assert not first.network.overlaps(second.network)
        a, b = first.allocate(()), second.allocate(())
        assert a != b
        assert a in first
        assert b in second
    finally:
        first.release()
        second.release()


def test_a_block_held_by_another_process_is_skipped(tmp_path: Path) -> None:
    """The lock is machine-wide: a block claimed in another process is not taken here."""
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from klink.providers.local import addresses
        block = addresses.claim(Path({str(tmp_path / "other")!r}))
        print(block.network, flush=True)
        sys.stdin.read()
        """
    )
    other = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert other.stdout is not None
        theirs = other.stdout.readline().strip()
        mine = addresses.claim(tmp_path / "other")  # the same start: must move on
        try:
            assert str(mine.network) != theirs
        finally:
            mine.release()
    finally:
        assert other.stdin is not None
        other.stdin.close()
        other.wait(10)
    again = addresses.claim(tmp_path / "other")  # released with its process
    try:
        assert str(again.network) == theirs
    finally:
        again.release()


def test_an_address_bound_by_someone_else_is_not_given_out(tmp_path: Path) -> None:
    block = addresses.claim(tmp_path / "home")
    try:
        first = block.allocate(())
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((first, 0))
            sock.listen()
            assert first in addresses.bound_addresses()
            assert block.allocate(()) != first
        assert block.allocate(()) == first
    finally:
        block.release()


def test_a_restarted_cloud_keeps_its_instances_block(tmp_path: Path) -> None:
    first = addresses.claim(tmp_path / "home")
    address = first.allocate(())
    first.release()
    other_home = addresses.claim(tmp_path / "elsewhere")
    try:
        again = addresses.claim(tmp_path / "zzz", in_use=[address])
        try:
            assert address in again
        finally:
            again.release()
    finally:
        other_home.release()
