"""The local cloud's metrics: HAProxy's servers labelled with their group, and its own Prometheus.

``metrics_text`` is what the daemon serves at ``GET /metrics``: HAProxy's built-in exporter
(``HAProxy.metrics_url()``) with ``group="<group>"`` on every per-server series of a slot that
a traffic member's target holds (``exposition.add_group_labels``). The map (backend, slot) →
group is the daemon's state *at scrape time*, read before and after HAProxy answers: a slot
whose group changed in between is left unlabelled for that scrape, so that no sample is ever
counted for a group it was not serving. Free slots and direct targets (registered without a
member, the pre-weights way) get no label. HAProxy's counters live with the slot, not with its
occupant, so a slot reused by another group goes on counting from where it was; under the new
label that is a new series, whose first sample ``rate``/``increase`` never count, so the new
group is charged only what it served. HAProxy's ``response_time_average`` is the slot's, the
previous group's answers included, so response times are counted by group from HAProxy's
request log instead: ``klink_local_response_seconds``, a histogram per group
(``latency.py``), served after the exporter's text.

``prometheus()`` starts, on first use, a real Prometheus (``promserver``) under
``KLINK_HOME/local/prometheus`` that scrapes the daemon's ``/metrics`` every
``scrape_interval`` seconds (1 s by default, ``KLINK_LOCAL_SCRAPE_SECONDS``), and returns
where it listens. It outlives the daemon like HAProxy does: a restarted daemon adopts it and
points it at its new port (``adopt_prometheus``: a reload), and ``klink stop`` stops it.
"""

from __future__ import annotations

import http.client
import logging
import threading
from urllib.parse import urlsplit

from klink.errors import KlinkError, ProviderError
from klink.providers import base
from klink.providers.local import exposition, haproxy, latency
from klink.providers.local.promserver import PrometheusServer, ScrapeTarget
from klink.providers.local.state import State

log = logging.getLogger("klink.local")

SCRAPE_JOB = "local-cloud"
DEFAULT_SCRAPE_SECONDS = 1.0
# HAProxy's exporter speaks the text format 0.0.4; it is passed on as it came.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _fetch(url: str) -> str:
    """The exporter's text. Plain ``http.client``, one connection per scrape: a new httpx
    client per call costs more than the whole rewriting (its TLS context)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    try:
        connection.request("GET", parts.path or "/metrics")
        response = connection.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException) as exc:
        raise ProviderError(f"haproxy exporter: {exc}") from None
    finally:
        connection.close()
    if response.status != 200:
        raise ProviderError(f"haproxy exporter answered {response.status}")
    # Bytes that are not UTF-8 go through unchanged (the daemon encodes them back alike).
    return body.decode("utf-8", "surrogateescape")


class MetricsMixin:
    state: State
    lock: threading.RLock
    lb: haproxy.HAProxy
    prom: PrometheusServer
    prom_lock: threading.Lock
    response_times: latency.ResponseTimes
    url: str | None  # the daemon's own, once it listens

    def server_groups(self) -> dict[tuple[str, str], str]:
        """(HAProxy proxy, server) → the group each member's slot serves for, now."""
        with self.lock:
            return {
                (haproxy.proxy_name(name), haproxy.slot_name(target["slot"])): target["member"]
                for name, record in self.state.target_groups.items()
                for target in record["targets"].values()
                if target.get("member") and "slot" in target
            }

    def metrics_text(self) -> str:
        """HAProxy's exporter output with the ``group`` labels, then the response times by
        group; empty while HAProxy does not run (no target group yet)."""
        before = self.server_groups()
        if not self.lb.running():
            return ""
        text = _fetch(self.lb.metrics_url())
        after = self.server_groups()
        steady = {key: group for key, group in after.items() if before.get(key) == group}
        labelled = exposition.add_group_labels(text, steady)
        if labelled and not labelled.endswith("\n"):
            labelled += "\n"
        return labelled + self.response_times.exposition()

    def _targets(self) -> list[ScrapeTarget]:
        if self.url is None:
            raise ProviderError("the local cloud is not listening yet", field="prometheus")
        return [ScrapeTarget(SCRAPE_JOB, f"{self.url}/metrics")]

    def prometheus(self) -> base.PrometheusEndpoint:
        """The local cloud's Prometheus, started on first use; ProviderError naming
        ``apt-get install prometheus`` when it is not installed."""
        with self.prom_lock:
            url = self.prom.start(self._targets())
        return base.PrometheusEndpoint(url=url, scrape_interval=self.prom.scrape_interval)

    def adopt_prometheus(self) -> None:
        """After a (re)start: a Prometheus left running scrapes this daemon from now on."""
        with self.prom_lock:
            if not self.prom.running():
                return
            try:
                self.prom.start(self._targets())
            except KlinkError as exc:
                # Metrics must never keep the cloud from starting; the next prometheus() call
                # tries again.
                log.warning("could not adopt the running prometheus: %s", exc.message)
