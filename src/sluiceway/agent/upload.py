"""POST one archive to the ingress service, shaped exactly like the Lightspeed exporter's request.

``multipart/form-data`` with one part ``name="file"``, ``filename="lightspeed-assistant.tgz"``,
``Content-Type: application/vnd.redhat.<service_id>.periodic+tar``; headers ``Authorization:
Bearer <token>``, ``User-Agent: openshift-lightspeed-operator/user-data-collection
cluster/<identity_id>`` and ``Accept-Encoding: identity`` only (httpx's defaults removed). The
body streams from the archive file. One timeout for connect, read and write; no retries here.

Outcomes: 202 with a JSON ``request_id`` → the id. Timeouts, connection errors, 429 and 5xx →
``TransientError`` (backoff). Anything else, a 202 without ``request_id`` included →
``UploadRejected`` (files kept, retried at ``retry_interval``, logged as a rejection).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import BinaryIO

import httpx

from sluiceway.agent.archive import ARCHIVE_FILENAME
from sluiceway.agent.config import ShipConfig
from sluiceway.errors import PermanentError, TransientError

USER_AGENT = "openshift-lightspeed-operator/user-data-collection cluster/{identity_id}"


class UploadRejected(PermanentError):
    """The ingress answered, but not with an accepted upload (4xx other than 429, 2xx other than 202…)."""

    def __init__(self, detail: str, status: int):
        super().__init__(detail)
        self.status = status


def content_type(service_id: str) -> str:
    return f"application/vnd.redhat.{service_id}.periodic+tar"


class Uploader:
    def __init__(self, cfg: ShipConfig, transport: httpx.BaseTransport | None = None):
        self.url = cfg.ingress_server_url
        self.part_type = content_type(cfg.service_id)
        self.timeout = cfg.ingress_connection_timeout
        self.client = httpx.Client(timeout=httpx.Timeout(self.timeout), transport=transport, follow_redirects=False)
        for name in list(self.client.headers):
            del self.client.headers[name]
        self.client.headers.update({
            "Accept-Encoding": "identity",
            "User-Agent": USER_AGENT.format(identity_id=cfg.identity_id),
            "Authorization": f"Bearer {cfg.ingress_server_auth_token.get_secret_value()}",
        })

    def upload(self, archive: BinaryIO, on_bytes: Callable[[int], None] | None = None) -> str:
        """Send the archive (read from its start); return the ingress ``request_id``."""
        body = _Counting(archive, on_bytes)
        try:
            resp = self.client.post(self.url, files={"file": (ARCHIVE_FILENAME, body, self.part_type)})
        except httpx.TimeoutException as e:
            raise TransientError(f"no answer within {self.timeout:g}s ({type(e).__name__})") from None
        except httpx.RequestError as e:
            raise TransientError(f"connection failed: {e or type(e).__name__}") from None
        return _result(resp)

    def close(self) -> None:
        self.client.close()


def _result(resp: httpx.Response) -> str:
    code = resp.status_code
    text = resp.text[:300].strip()
    if code == 202:
        try:
            doc = resp.json()
        except ValueError:
            doc = None
        request_id = doc.get("request_id") if isinstance(doc, dict) else None
        if isinstance(request_id, str) and request_id:
            return request_id
        raise UploadRejected(f"202 without a request_id in the JSON body: {text!r}", code)
    if code == 429 or code >= 500:
        raise TransientError(f"ingress answered {code}: {text!r}", retry_after=_retry_after(resp))
    raise UploadRejected(f"ingress rejected the upload with {code}: {text!r}", code)


def _retry_after(resp: httpx.Response) -> float | None:
    try:
        return max(0.0, float(resp.headers.get("retry-after", "")))
    except ValueError:
        return None


class _Counting:
    """A binary reader that reports every chunk read, for the upload progress bar."""

    def __init__(self, f: BinaryIO, on_bytes: Callable[[int], None] | None):
        self.f = f
        self.on_bytes = on_bytes

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        if data and self.on_bytes:
            self.on_bytes(len(data))
        return data

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self.f.seek(offset, whence)

    def tell(self) -> int:
        return self.f.tell()
