from prometheus_client.parser import text_string_to_metric_families

from sluiceway.telemetry.metrics import Metrics


def samples(m: Metrics) -> dict[tuple[str, tuple], float]:
    out = {}
    for fam in text_string_to_metric_families(m.render().decode()):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_request_counts_and_latency_histogram():
    m = Metrics()
    for seconds in (0.0003, 0.0005, 0.002, 3.0, 7.0):
        m.observe_request("/v1/streams/{stream}/events", "POST", 202, seconds)
    m.observe_request("/v1/streams/{stream}/events", "POST", 400, 0.01)
    m.observe_request("/health", "GET", 200, 0.0001)
    got = samples(m)
    route = ("route", "/v1/streams/{stream}/events")
    assert got[("sluice_http_requests_total", (("method", "POST"), route, ("status", "202")))] == 5
    assert got[("sluice_http_requests_total", (("method", "POST"), route, ("status", "400")))] == 1
    assert got[("sluice_http_requests_total", (("method", "GET"), ("route", "/health"), ("status", "200")))] == 1

    def bucket(le: str) -> float:
        return got[("sluice_http_request_seconds_bucket", (("le", le), route))]

    assert bucket("0.0005") == 2  # a bound is inclusive (le: less than or equal)
    assert bucket("0.0025") == 3
    assert bucket("0.01") == 4
    assert bucket("1.0") == 4
    assert bucket("5.0") == 5
    assert bucket("+Inf") == 6
    assert got[("sluice_http_request_seconds_count", (route,))] == 6
    assert abs(got[("sluice_http_request_seconds_sum", (route,))] - 10.0128) < 1e-9


def test_request_stats_merge_across_processes(tmp_path):
    other, mine = Metrics(), Metrics()
    other.observe_request("/health", "GET", 200, 0.001)
    other.write_snapshot(tmp_path)
    next(tmp_path.glob("*.json")).rename(tmp_path / "999999.json")  # as if another process wrote it
    mine.observe_request("/health", "GET", 200, 0.002)
    text = mine.render(tmp_path).decode()
    assert 'sluice_http_requests_total{method="GET",route="/health",status="200"} 2.0' in text
    assert 'sluice_http_request_seconds_count{route="/health"} 2.0' in text
