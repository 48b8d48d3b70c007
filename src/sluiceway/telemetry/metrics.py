"""Every Prometheus metric sluiceway exports, defined once.

Each process keeps its own in-memory registry (cheap to update on the hot path). When
``sluice serve`` runs several processes, each writes a snapshot of its samples to
``<dir>/<pid>.json`` every second, and ``/metrics`` on any worker answers with its own live
samples plus the others' snapshots, summed by name and labels: the whole gateway, without the
per-update file writes (and ``getpid`` calls) of prometheus_client's multiprocess mode.
"""

from __future__ import annotations

import math
import os
from bisect import bisect_left
from itertools import accumulate
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.utils import floatToGoString

FSYNC_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0)
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        r = registry if registry is not None else CollectorRegistry()
        self.registry = r
        self.requests = RequestStats()
        r.register(self.requests)
        self.events_accepted = PlainCounter("sluice_events_accepted", "Events accepted durably", ["stream"], registry=r)
        self.events_rejected = Counter("sluice_events_rejected", "Events refused", ["reason"], registry=r)
        self.journal_bytes = Gauge("sluice_journal_bytes", "Bytes held by the journal", ["partition"],
                                   registry=r, multiprocess_mode="livemax")
        self.journal_fsync_seconds = Histogram("sluice_journal_fsync_seconds", "Journal write+fsync latency",
                                               buckets=FSYNC_BUCKETS, registry=r)
        self.sink_lag = Gauge("sluice_sink_lag_records", "Journal entries not yet acknowledged by a sink",
                              ["sink"], registry=r)
        self.batches_sent = Counter("sluice_sink_batches_sent", "Batches delivered", ["sink"], registry=r)
        self.records_sent = Counter("sluice_sink_records_sent", "Records delivered", ["sink"], registry=r)
        self.sink_retries = Counter("sluice_sink_retries", "Transient failures retried", ["sink"], registry=r)
        self.dead_letters = Counter("sluice_sink_dead_letters", "Records dead-lettered", ["sink"], registry=r)
        self.spool_blobs = Gauge("sluice_blob_spool_blobs", "Blobs in the spool, waiting for their attachments sinks",
                                 registry=r)
        self.spool_bytes = Gauge("sluice_blob_spool_bytes", "Bytes of the blobs in the spool", registry=r)
        self.blobs_swept = Counter("sluice_blobs_swept", "Blobs no record refers to, removed from the spool",
                                   registry=r)
        self.journal_unreadable = Gauge("sluice_journal_unreadable",
                                        "1 while a journal partition cannot be read (see sluice journal repair)",
                                        registry=r)
        self.delivery_crashes = Counter("sluice_delivery_loop_crashes",
                                        "Delivery loops that failed unexpectedly and were restarted", ["sink"],
                                        registry=r)
        self._accepted = self.events_accepted.values

    def accepted(self, stream: str, n: int) -> None:
        values = self._accepted
        values[stream] = values.get(stream, 0) + n

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.observe(route, method, status, seconds)

    def render(self, snapshot_dir: Path | None = None) -> bytes:
        """Prometheus text: this process's samples plus other processes' snapshots."""
        if snapshot_dir is None:
            return generate_latest(self.registry)
        own = f"{os.getpid()}.json"
        families = _families(self.registry)
        for path in sorted(snapshot_dir.glob("*.json")):
            if path.name == own:
                continue
            try:
                other = orjson.loads(path.read_bytes())
            except (OSError, orjson.JSONDecodeError):
                continue  # being replaced or gone
            _merge(families, other)
        return generate_latest(_Frozen(families))

    def write_snapshot(self, snapshot_dir: Path) -> None:
        """Atomically replace ``<dir>/<pid>.json`` with this process's samples."""
        snapshot_dir.mkdir(parents=True, exist_ok=True)
        path = snapshot_dir / f"{os.getpid()}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(_families(self.registry)))
        os.replace(tmp, path)

    def remove_snapshot(self, snapshot_dir: Path) -> None:
        try:
            (snapshot_dir / f"{os.getpid()}.json").unlink()
        except FileNotFoundError:
            pass


class PlainCounter:
    """A counter kept as plain numbers by label values (every update happens on the process's
    event loop, so no lock is needed), built into a family when the registry is read.
    ``values`` is keyed by the label value itself when there is one label, else by the tuple.
    ``labels(...).inc(n)`` works as on a prometheus_client counter."""

    def __init__(self, name: str, documentation: str, labelnames: list[str], registry: CollectorRegistry):
        self.name, self.documentation, self.labelnames = name, documentation, labelnames
        self.values: dict[Any, float] = {}
        registry.register(self)

    def labels(self, **labels: str) -> "_PlainChild":
        key = tuple(labels[n] for n in self.labelnames)
        return _PlainChild(self.values, key[0] if len(key) == 1 else key)

    def collect(self):
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        one = len(self.labelnames) == 1
        for key, n in list(self.values.items()):
            family.add_metric([key] if one else list(key), n)
        yield family


class _PlainChild:
    __slots__ = ("values", "key")

    def __init__(self, values: dict[Any, float], key: Any):
        self.values, self.key = values, key

    def inc(self, n: float = 1) -> None:
        self.values[self.key] = self.values.get(self.key, 0) + n


class RequestStats:
    """``sluice_http_requests`` (by route, method and status) and ``sluice_http_request_seconds``
    (by route), kept as plain numbers: a request costs two dict lookups and three additions,
    without the locks of prometheus_client's metric objects (every update happens on the
    process's event loop). A collector: the families are built when the registry is read."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str, int], int] = {}
        self.latency: dict[str, list[float]] = {}  # route -> per-bucket counts, +Inf's, then the sum

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        counts = self.counts
        counts[key] = counts.get(key, 0) + 1
        h = self.latency.get(route)
        if h is None:
            h = self.latency[route] = [0] * (len(LATENCY_BUCKETS) + 2)
        h[bisect_left(LATENCY_BUCKETS, seconds)] += 1  # the first bucket whose bound is >= seconds
        h[-1] += seconds

    def collect(self):
        requests = CounterMetricFamily("sluice_http_requests", "HTTP requests by route, method and status",
                                       labels=["route", "method", "status"])
        for (route, method, status), n in list(self.counts.items()):
            requests.add_metric([route, method, str(status)], n)
        yield requests
        latency = HistogramMetricFamily("sluice_http_request_seconds", "HTTP request latency", labels=["route"])
        bounds = [floatToGoString(b) for b in (*LATENCY_BUCKETS, math.inf)]
        for route, h in list(self.latency.items()):
            latency.add_metric([route], list(zip(bounds, accumulate(h[:-1]))), h[-1])
        yield latency


def _families(registry: CollectorRegistry) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for m in registry.collect():
        samples = {}
        for smp in m.samples:
            key = orjson.dumps([smp.name, sorted(smp.labels.items())]).decode()
            samples[key] = samples.get(key, 0.0) + smp.value
        out[m.name] = {"type": m.type, "doc": m.documentation, "samples": samples}
    return out


def _merge(into: dict[str, dict[str, Any]], other: dict[str, dict[str, Any]]) -> None:
    for name, fam in other.items():
        mine = into.setdefault(name, {"type": fam["type"], "doc": fam["doc"], "samples": {}})
        for key, value in fam["samples"].items():
            if key.split('"', 2)[1].endswith("_created"):
                continue  # creation times do not add up
            mine["samples"][key] = mine["samples"].get(key, 0.0) + value


class _Frozen:
    """A collector serving merged families to ``generate_latest``."""

    def __init__(self, families: dict[str, dict[str, Any]]):
        self.families = families

    def collect(self):
        for name, fam in self.families.items():
            m = Metric(name, fam["doc"], fam["type"])
            for key, value in fam["samples"].items():
                sample_name, labels = orjson.loads(key)
                m.add_sample(sample_name, dict(labels), value)
            yield m
