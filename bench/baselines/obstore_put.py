"""Baseline of bench/logs.py's LDO phase: one direct ``obstore.put`` of a file to an S3
bucket, multipart with the gateway's chunking (``sluiceway.objectstore``: ``PART_SIZE`` parts,
``PART_CONCURRENCY`` in flight, multipart above ``MULTIPART_THRESHOLD``), through an S3Store
built the way the gateway builds it (``open_store``: same client options). Prints one JSON
line ``{"bytes": …, "secs": …}``; ``secs`` is the put alone (no interpreter start, no imports).

    BENCH_S3_KEY=… BENCH_S3_SECRET=… python bench/baselines/obstore_put.py ENDPOINT BUCKET KEY FILE
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import obstore

from sluiceway.config.blocks import S3Connection
from sluiceway.objectstore import MULTIPART_THRESHOLD, PART_CONCURRENCY, PART_SIZE, open_store


def main(argv: list[str]) -> int:
    endpoint, bucket, key, path = argv
    conn = S3Connection(bucket=bucket, endpoint=endpoint, access_key_id=os.environ["BENCH_S3_KEY"],
                        secret_access_key=os.environ["BENCH_S3_SECRET"])  # fmt: skip
    store = open_store(s3=conn)
    src = Path(path)
    size = src.stat().st_size
    t0 = time.perf_counter()
    obstore.put(store._inner, store.full_key(key), src, use_multipart=size > MULTIPART_THRESHOLD,  # noqa: SLF001
                chunk_size=PART_SIZE, max_concurrency=PART_CONCURRENCY)  # fmt: skip
    print(json.dumps({"bytes": size, "secs": time.perf_counter() - t0}))
    return 0


if __name__ == "__main__":
    from sluiceway.runtime.finish import finish

    finish(main(sys.argv[1:]))  # obstore's threads must not abort the process at exit (runtime/finish.py)
