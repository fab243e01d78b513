"""Response times of the local cloud's groups, request by request, from HAProxy's request log.

HAProxy 2.6's exporter gives a server slot's response time only as a moving average of its last
responses, and that average belongs to the slot: a group given a slot that another group left
starts from the other group's answers. So every target group's frontend also logs each request
(``LOG_FORMAT``: backend, server slot, ``%Tr``, the server's time to its response headers, in
ms) as one datagram to ``log.sock`` beside HAProxy's config, and the daemon reads them here.
Each response is counted in the histogram of the group its slot serves *at that moment*
(``groups``: the daemon's (proxy, server) → group map), never of the slot, so a group's
figures are its own from its first answer:

    klink_local_response_seconds_bucket{proxy="hello-dev",group="hello-dev-v003",le="0.005"} 12

with ``_sum`` and ``_count``, as Prometheus's histograms are (``BUCKETS``, in seconds). The
latency builtins are ``histogram_quantile`` over it: request percentiles, as on aws.

A slot changes group only once its previous group's requests have ended (it is freed after
draining) and takes requests only after its health checks rise, so a map read up to
``REFRESH_SECONDS`` ago names the right group; a line whose slot is in no group (a direct
target, a free slot) is not counted. Requests that got no answer from a server (``%Tr`` -1,
``<NOSRV>``) are not counted either. Datagrams are never waited for: under overload the kernel
drops some, so the histograms are a sample of the responses, not their count (error rates come
from the exporter's counters). A group that has served nothing for ``FORGET_SECONDS`` and
holds no slot any more is forgotten. The counts start at zero with each daemon, which
Prometheus reads as a counter reset.
"""

from __future__ import annotations

import bisect
import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from klink.providers.local.exposition import escape

log = logging.getLogger("klink.local")

METRIC = "klink_local_response_seconds"
# What each target group's frontend logs, one request a line: ``<backend> <server> <Tr ms>``.
LOG_FORMAT = "%b %s %Tr"
# Seconds. HAProxy times in whole ms, so 1 ms apart up to 10 ms (where local services answer),
# then 12 to 25 % apart up to 1 s and coarser beyond: a percentile read within a bucket is off
# by less than the bucket's width.
BUCKETS = (
    0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.007, 0.008, 0.009, 0.010,
    0.0125, 0.015, 0.0175, 0.020, 0.025, 0.030, 0.035, 0.040, 0.050, 0.060, 0.070, 0.080,
    0.100, 0.125, 0.150, 0.175, 0.200, 0.250, 0.300, 0.350, 0.400, 0.500, 0.600, 0.700,
    0.800, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 4.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0,
)  # fmt: skip
_LE = [*(f"{bound:g}" for bound in BUCKETS), "+Inf"]
REFRESH_SECONDS = 0.1
FORGET_SECONDS = 3600.0
_DATAGRAM = 4096
_WAKE_SECONDS = 0.5


@dataclass
class Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))
    total: float = 0.0
    last: float = 0.0  # when it last counted a response (the monotonic clock)

    def observe(self, seconds: float, now: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.total += seconds
        self.last = now


Groups = Callable[[], Mapping[tuple[str, str], str]]


class ResponseTimes:
    """The histograms, fed by ``observe`` (one log line) and read by ``exposition``."""

    def __init__(self, groups: Groups, clock: Callable[[], float] = time.monotonic) -> None:
        self._groups = groups
        self._clock = clock
        self._lock = threading.Lock()
        self._map: Mapping[tuple[str, str], str] = {}
        self._read_at = float("-inf")
        self._histograms: dict[tuple[str, str], Histogram] = {}  # (proxy, group) → counts

    def _group(self, proxy: str, server: str, now: float) -> str | None:
        if now - self._read_at > REFRESH_SECONDS:
            # Outside ``_lock``: the map waits for the cloud's lock, never the other way round.
            self._map, self._read_at = self._groups(), now
        return self._map.get((proxy, server))

    def observe(self, line: bytes) -> None:
        """Count one log line; a line that is not ``LOG_FORMAT``'s is left out. Called by one
        thread at a time (the reader)."""
        parts = line.split()
        if len(parts) != 3:
            return
        try:
            proxy, server = parts[0].decode(), parts[1].decode()
            milliseconds = int(parts[2])
        except (UnicodeDecodeError, ValueError):
            return
        if milliseconds < 0:
            return  # no answer from the server: nothing to time
        now = self._clock()
        group = self._group(proxy, server, now)
        if group is None:
            return
        with self._lock:
            histogram = self._histograms.get((proxy, group))
            if histogram is None:
                histogram = self._histograms[(proxy, group)] = Histogram()
            histogram.observe(milliseconds / 1000, now)

    def exposition(self) -> str:
        """The histograms in Prometheus's text format ("" before the first response)."""
        now = self._clock()
        held = {(proxy, group) for (proxy, _server), group in self._groups().items()}
        with self._lock:
            for key, histogram in list(self._histograms.items()):
                if key not in held and now - histogram.last > FORGET_SECONDS:
                    del self._histograms[key]
            rows = [(key, list(h.counts), h.total) for key, h in self._histograms.items()]
        if not rows:
            return ""
        lines = [
            f"# HELP {METRIC} Time to the server's response headers (HAProxy %Tr), by group.",
            f"# TYPE {METRIC} histogram",
        ]
        for (proxy, group), counts, total in sorted(rows):
            labels = f'proxy="{escape(proxy)}",group="{escape(group)}"'
            running = 0
            for le, count in zip(_LE, counts, strict=True):
                running += count
                lines.append(f'{METRIC}_bucket{{{labels},le="{le}"}} {running}')
            lines.append(f"{METRIC}_sum{{{labels}}} {total:.6f}")
            lines.append(f"{METRIC}_count{{{labels}}} {running}")
        return "\n".join(lines) + "\n"


class RequestLog:
    """The datagram socket HAProxy logs to, read by one thread into ``times``."""

    def __init__(self, path: Path, times: ResponseTimes) -> None:
        self.path = path
        self.times = times
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def start(self) -> None:
        """Bind (a socket file left by an earlier daemon is replaced) and read in the
        background. A socket that cannot be bound is logged: latency is then unmeasured,
        and nothing else is affected."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            self.path.unlink(missing_ok=True)
            sock.bind(str(self.path))
        except OSError as exc:
            sock.close()
            log.warning("cannot read HAProxy's request log at %s: %s", self.path, exc)
            return
        with contextlib.suppress(OSError):  # room for bursts; the kernel caps it
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        sock.settimeout(_WAKE_SECONDS)  # to see stop() without a datagram
        self._socket = sock
        self._thread = threading.Thread(target=self._read, name="request-log", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        sock = self._socket
        assert sock is not None
        while not self._stopping.is_set():
            try:
                line = sock.recv(_DATAGRAM)
            except TimeoutError:
                continue
            except OSError:
                return
            if line:
                self.times.observe(line)

    def stop(self) -> None:
        sock, self._socket = self._socket, None
        if sock is None:
            return
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        sock.close()
        with contextlib.suppress(OSError):
            self.path.unlink()
