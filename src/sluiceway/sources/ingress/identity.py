"""Who is uploading: a sluiceway token, or a trusted ``x-rh-identity`` header.

``x-rh-identity`` is base64 of ``{"identity": {...}}`` as Red Hat's gateways set it (checks
and messages as in the reference: present, base64, JSON, ``org_id`` (else
``internal.org_id``), ``type``). It is only believed when the receiver is configured to trust
it, i.e. when an authenticating proxy in front of sluiceway sets it.

With a Bearer token, the org is the token's tenant, and the cluster comes from the exporter's
``User-Agent``, ``<operator>/<version> cluster/<id>`` (as uhc-auth-proxy reads it).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

import orjson

from sluiceway.errors import BadRequest

_CLUSTER = re.compile(r"(?:^|\s)cluster/([A-Za-z0-9._:-]{1,128})")
_SAFE = re.compile(r"[A-Za-z0-9._-]{1,128}\Z")


@dataclass(frozen=True)
class Identity:
    org_id: str
    account_number: str = ""
    cluster_id: str = "unknown"
    type: str = "System"


def from_header(value: bytes) -> Identity:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("Bad Request: unable to b64 decode x-rh-identity header") from None
    try:
        doc = orjson.loads(raw)
        ident = doc["identity"]
        if not isinstance(ident, dict):
            raise TypeError
    except (orjson.JSONDecodeError, KeyError, TypeError):
        raise BadRequest("Bad Request: x-rh-identity header does not contain valid JSON") from None
    org = ident.get("org_id") or (ident.get("internal") or {}).get("org_id") or ""
    if not isinstance(org, str) or not org:
        raise BadRequest("Bad Request: x-rh-identity header has an invalid or missing org_id")
    if not ident.get("type"):
        raise BadRequest("Bad Request: x-rh-identity header is missing type")
    cluster = ((ident.get("system") or {}).get("cluster_id")) or "unknown"
    return Identity(org_id=_safe("org_id", org), account_number=str(ident.get("account_number") or ""),
                    cluster_id=_safe("cluster_id", str(cluster)), type=str(ident["type"]))


def cluster_from_user_agent(user_agent: str) -> str:
    m = _CLUSTER.search(user_agent)
    return m.group(1).replace(":", "-") if m else "unknown"


def _safe(what: str, value: str) -> str:
    """Values that become path segments of object keys."""
    if not _SAFE.match(value) or value in (".", ".."):
        raise BadRequest(f"{what} {value!r} must be 1-128 characters of A-Z a-z 0-9 . _ -")
    return value
