"""Fuzz the ingest path's body parsing and Record encoding (atheris, coverage-guided).

Feeds arbitrary bytes to ``parse_events_raw`` (as a JSON body or NDJSON, with and without the
time-field probe), then ``encode_events``. Anything but a ``BadRequest`` naming the problem is
a finding, and so is an encoded Record that does not read back (``decode_head``,
``decode_doc``) or that is not one line (journal entries become JSON Lines in the object store).

    pip install -e '.[fuzz]'
    python fuzz/ingest_body.py fuzz/corpus/ingest_body -max_len=4096 -max_total_time=300

Findings are written to the current directory (``crash-…``, ``timeout-…``); turn each into a
test. The corpus directory is created if missing and kept between runs (not committed).
"""

import atheris

with atheris.instrument_imports():
    from sluiceway.errors import BadRequest
    from sluiceway.http.body import parse_events_raw
    from sluiceway.http.ingest import _EVENT_TIME, encode_events
    from sluiceway.record import decode_doc, decode_head


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    mode = fdp.ConsumeIntInRange(0, 3)  # 0/1: probe, JSON/NDJSON; 2/3: full path
    body = fdp.ConsumeBytes(fdp.remaining_bytes())
    try:
        events = parse_events_raw(body, mode % 2 == 1, _EVENT_TIME if mode < 2 else None)
        items = encode_events(events, tenant="t", stream="s", source="http",
                              received_at="2026-01-01T00:00:00.000000Z", idempotency_key=None)
    except BadRequest:
        return
    for item in items:
        assert decode_head(item) is not None and decode_doc(item) is not None, item
        assert b"\n" not in item and b"\r" not in item, item


if __name__ == "__main__":
    from harness import main

    main(test_one_input)
