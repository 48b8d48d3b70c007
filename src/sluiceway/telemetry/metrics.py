"""Every Prometheus metric sluiceway exports, defined once.

With several worker processes the multiprocess collector is used
(``PROMETHEUS_MULTIPROC_DIR`` under the data dir), so ``/metrics`` on any worker shows
the whole gateway.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess

FSYNC_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0)
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        r = registry if registry is not None else CollectorRegistry()
        self.registry = r
        self.requests = Counter("sluice_http_requests", "HTTP requests by route, method and status",
                                ["route", "method", "status"], registry=r)
        self.request_seconds = Histogram("sluice_http_request_seconds", "HTTP request latency",
                                         ["route"], buckets=LATENCY_BUCKETS, registry=r)
        self.events_accepted = Counter("sluice_events_accepted", "Events accepted durably", ["stream"], registry=r)
        self.events_rejected = Counter("sluice_events_rejected", "Events refused", ["reason"], registry=r)
        self.journal_bytes = Gauge("sluice_journal_bytes", "Bytes held by the journal", ["partition"],
                                   registry=r, multiprocess_mode="livemax")
        self.journal_fsync_seconds = Histogram("sluice_journal_fsync_seconds", "Journal write+fsync latency",
                                               buckets=FSYNC_BUCKETS, registry=r)
        self.sink_lag = Gauge("sluice_sink_lag_records", "Journal entries not yet acknowledged by a sink",
                              ["sink"], registry=r, multiprocess_mode="livemax")
        self.batches_sent = Counter("sluice_sink_batches_sent", "Batches delivered", ["sink"], registry=r)
        self.records_sent = Counter("sluice_sink_records_sent", "Records delivered", ["sink"], registry=r)
        self.sink_retries = Counter("sluice_sink_retries", "Transient failures retried", ["sink"], registry=r)
        self.dead_letters = Counter("sluice_sink_dead_letters", "Records dead-lettered", ["sink"], registry=r)
        self._req_children: dict[tuple[str, str, int], Any] = {}
        self._lat_children: dict[str, Any] = {}

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        child = self._req_children.get(key)
        if child is None:
            child = self._req_children[key] = self.requests.labels(route, method, str(status))
        child.inc()
        lat = self._lat_children.get(route)
        if lat is None:
            lat = self._lat_children[route] = self.request_seconds.labels(route)
        lat.observe(seconds)

    def render(self) -> bytes:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            reg = CollectorRegistry()
            multiprocess.MultiProcessCollector(reg)
            return generate_latest(reg)
        return generate_latest(self.registry)
