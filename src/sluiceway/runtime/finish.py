"""Ending a process without a native runtime racing the interpreter's teardown.

obstore does its I/O on a Tokio runtime whose worker threads are never told to stop. If one of
them is still busy when ``Py_Finalize`` tears the interpreter down, it panics on a thread no
Python frame wraps, and Rust aborts the process: SIGABRT, exit status 134, after all the work
had completed (11 of 100 short processes that read one object, on a loaded 2-core machine). So
a process that has loaded obstore ends with ``os._exit`` once its output is flushed. By then
nothing needs the interpreter's teardown: the gateway has closed its journal, stores, sockets
and metrics snapshot itself, and the commands their stores and files.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import NoReturn


def finish(code: object = 0) -> NoReturn:
    """Exit with ``code`` (as ``sys.exit`` takes it); skip the interpreter's teardown when
    obstore is loaded."""
    if "obstore" not in sys.modules:
        sys.exit(code)
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:  # sys.exit("message"): printed, status 1
        with contextlib.suppress(Exception):
            print(code, file=sys.stderr)
        status = 1
    with contextlib.suppress(Exception):
        logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(status & 0xFF)
