"""Fuzz what collectors and the ingress receiver read from files (atheris, coverage-guided).

Two targets, chosen by the first input byte: the log-file decoder (``FileDecoder``: gzip or
not, NDJSON / JSON array / JSON object, fed in chunks of a fuzzed size, each decoded line
normalised into a ``logs`` row and turned into its COPY tuple), and the ingress archive reader
(``extract``: tar or gzip tar). A ``DecodeError`` (the whole file is unreadable) or an
``HTTPError`` (the archive is refused) is an answer; any other exception, or a run longer than
``-timeout`` seconds (a loop), is a finding.

    pip install -e '.[fuzz]'
    python fuzz/collected_files.py fuzz/corpus/collected_files -max_len=8192 -timeout=20 -max_total_time=300

Findings are written to the current directory (``crash-…``, ``timeout-…``); turn each into a
test. The corpus directory is created if missing and kept between runs (not committed).
"""

import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from sluiceway.errors import HTTPError
    from sluiceway.logs.decoders import DecodeError, FileDecoder, Item
    from sluiceway.logs.pino import normalise
    from sluiceway.sources.ingress.archive import Limits, extract
    from sluiceway.store.logs import copy_tuple

KEYS = ["a.json.gz", "b.ndjson", "c.json", "d.log", "e"]
ARCHIVE = Path(tempfile.mkdtemp(prefix="sluice-fuzz-")) / "upload.tar"


def log_file(fdp: atheris.FuzzedDataProvider) -> None:
    key = KEYS[fdp.ConsumeIntInRange(0, len(KEYS) - 1)]
    chunk = fdp.ConsumeIntInRange(1, 64)
    body = fdp.ConsumeBytes(fdp.remaining_bytes())
    decoder = FileDecoder(key, max_item_bytes=4096)
    out = []
    try:
        for i in range(0, len(body), chunk):
            for items in decoder.feed(body[i:i + chunk]):
                out += items
        out += decoder.finish()
    except DecodeError:
        return
    for o in out:
        if isinstance(o, Item) and isinstance(o.value, dict):
            copy_tuple(normalise(o.value, id="0192b7a0-0000-7000-8000-000000000001", tenant="t",
                                 fallback="2026-01-01T00:00:00Z"))


def archive(fdp: atheris.FuzzedDataProvider) -> None:
    ARCHIVE.write_bytes(fdp.ConsumeBytes(fdp.remaining_bytes()))
    try:
        extract(ARCHIVE, Limits())
    except HTTPError:
        return


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    (log_file, archive)[fdp.ConsumeIntInRange(0, 1)](fdp)


if __name__ == "__main__":
    from harness import main

    main(test_one_input)
