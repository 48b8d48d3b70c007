"""The exception tree. Every error sluiceway raises on purpose is one of these.

::

    SluicewayError
    ├── ConfigError                 bad configuration; names the key (exit code 2)
    ├── HTTPError                   answered to a client as {"error", "detail"}
    │   ├── BadRequest              400 malformed body, bad name, bad parameter
    │   ├── Unauthorized            401 missing or invalid token
    │   ├── Forbidden               403 token lacks the scope or tenant
    │   ├── NotFound                404 unknown stream / resource
    │   ├── MethodNotAllowed        405 with Allow
    │   ├── Conflict                409
    │   ├── PayloadTooLarge         413 body over the limit (after decompression too)
    │   ├── UnsupportedMediaType    415
    │   └── Unavailable             503 with Retry-After (journal full, shutting down)
    ├── JournalError                the journal cannot do what was asked
    │   ├── JournalFull             over max_bytes; becomes 503 + Retry-After
    │   └── JournalCorrupt          damage other than a torn tail
    └── SinkError                   raised by Sink.send; decides retry vs dead letter
        ├── TransientError          retry with backoff (honours retry_after)
        └── PermanentError          never succeeds as is: dead-letter the batch
            └── RejectedRecords     only some records refused: dead-letter just those

Transient vs permanent is the one decision a sink makes about a failure; the delivery
helper does the rest.
"""

from __future__ import annotations


class SluicewayError(Exception):
    """Base of every error sluiceway raises on purpose."""


class ConfigError(SluicewayError):
    """Configuration is invalid. The message names the bad key."""


class HTTPError(SluicewayError):
    status: int = 400
    code: str = "bad_request"

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None, code: str | None = None):
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}
        if code:
            self.code = code


class BadRequest(HTTPError):
    status, code = 400, "bad_request"


class Unauthorized(HTTPError):
    status, code = 401, "unauthorized"


class Forbidden(HTTPError):
    status, code = 403, "forbidden"


class NotFound(HTTPError):
    status, code = 404, "not_found"


class MethodNotAllowed(HTTPError):
    status, code = 405, "method_not_allowed"


class Conflict(HTTPError):
    status, code = 409, "conflict"


class PayloadTooLarge(HTTPError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(HTTPError):
    status, code = 415, "unsupported_media_type"


class Unavailable(HTTPError):
    status, code = 503, "unavailable"

    def __init__(self, detail: str, *, retry_after: float = 1.0, code: str | None = None):
        super().__init__(detail, headers={"Retry-After": str(max(1, round(retry_after)))}, code=code)
        self.retry_after = retry_after


class JournalError(SluicewayError):
    """The journal cannot do what was asked."""


class JournalFull(JournalError):
    """The journal holds max_bytes of unacknowledged data; the caller should retry later."""

    def __init__(self, detail: str = "journal is full", retry_after: float = 5.0):
        super().__init__(detail)
        self.retry_after = retry_after


class JournalCorrupt(JournalError):
    """Damage in the middle of the journal (not a torn tail, which is repaired on open)."""


class SinkError(SluicewayError):
    """Raised by Sink.send. Subclass decides: retry or dead letter."""


class TransientError(SinkError):
    """Worth retrying: network, timeouts, 5xx, 429, locked database."""

    def __init__(self, detail: str, retry_after: float | None = None):
        super().__init__(detail)
        self.retry_after = retry_after


class PermanentError(SinkError):
    """Will never succeed as is: 4xx other than 408/429, encoding errors, constraint violations."""


class RejectedRecords(PermanentError):
    """Raised by Sink.send after storing the good records of a batch: the ones at these
    batch indexes (``{index: reason}``) were refused and are dead-lettered alone."""

    def __init__(self, rejected: dict[int, str]):
        super().__init__(f"{len(rejected)} record(s) refused; first: {next(iter(rejected.values()), '')}")
        self.rejected = rejected
