"""The OpenAPI document (``/openapi.json``) agrees with what the server accepts and answers.

schemathesis generates requests from the document (schema-valid ones and, parameter by
parameter, schema-violating ones) and sends them in-process to the ASGI app of a gateway on
the embedded defaults (temp data dir, SQLite), with an admin token. Every documented operation
is tried with a fixed seed and a bounded number of examples (its examples, coverage and
fuzzing phases). The checks are schemathesis' defaults, among them: no 5xx, responses match
their documented schema, status code and content type, schema-violating requests are refused
with a 4xx, schema-valid requests are not refused as invalid.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
import schemathesis
from cryptography.fernet import Fernet
from schemathesis.config import SchemathesisConfig
from schemathesis.python import asgi as schemathesis_asgi
from schemathesis.specs.openapi.checks import positive_data_acceptance

from sluiceway.http.app import api_spec, create_app
from sluiceway.runtime.gateway import Gateway
from sluiceway.secrets import ENV
from tests.helpers import make_config

# NDJSON bodies are a plain string in the document, which schemathesis cannot serialise: those
# cases are skipped (tests/http/test_ingest.py and test_body.py cover NDJSON).
pytestmark = pytest.mark.filterwarnings("ignore:Skipped test cases with unsupported payload media types")

# The bearer token the requests carry. Many are made when the tests are collected, before the
# gateway and its token exist: GatewayApp swaps in the admin token the fixture creates.
PLACEHOLDER = "conformance-admin-token"
# A fixed seed and no example database: every run tries the same requests.
CONFIG = SchemathesisConfig.from_dict({
    "seed": 20260131, "generation": {"max-examples": 15, "database": "none"},
    "base-url": f"http://{schemathesis_asgi.HOST}", "auth": {"openapi": {"bearer": {"bearer": PLACEHOLDER}}},
})

# Refusals the document can name but not describe, so that a schema-valid request may rightly
# get them: (method, path) -> the words such a 400's detail starts with. Only those 400s skip
# the "schema-valid request accepted" check; all other checks still run on them.
UNDESCRIBABLE = {
    # A source's settings and secrets are checked by its type's model (URLs, a PEM key in a Play
    # service account, a lookback of at most 7 days, ...) and an interval string must come to
    # 10 s or more: the document says so in prose.
    ("POST", "/v1/admin/sources"): ("settings", "secrets", "interval"),
    # An opaque cursor: only a next_cursor the server made is valid, which no schema generates.
    ("GET", "/v1/feedback"): ("cursor",),
    ("GET", "/v1/logs"): ("cursor",),
}


class GatewayApp:
    """The ASGI app under test: a gateway on the embedded defaults in the fixture's data dir.
    schemathesis runs the app's lifespan around each test (one per operation), and a gateway
    opens only once: each lifespan starts a new one on that data dir."""

    def __init__(self) -> None:
        self.config: Any = None  # set by the fixture, with an admin token for that data dir
        self.token: str | None = None
        self.app: Any = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            gw = Gateway(self.config)
            gw.access_log.enabled = False
            self.app = create_app(gw)  # its lifespan opens and closes the gateway
        elif scope["type"] == "http":
            placeholder, real = f"Bearer {PLACEHOLDER}".encode(), f"Bearer {self.token}".encode()
            scope = {**scope, "headers": [(k, real if k == b"authorization" and v == placeholder else v)
                                          for k, v in scope["headers"]]}
        await self.app(scope, receive, send)


APP = GatewayApp()
# The document a gateway on the embedded defaults serves (no sources; the fixture checks that
# it is the one served), loaded at import: parametrize collects one test per operation from it.
schema = schemathesis.openapi.from_dict(api_spec(), config=CONFIG)
schema.app = APP


async def _admin_token(config: Any) -> str:
    gw = Gateway(config)
    await gw.open()
    try:
        _, token = await gw.store.create_token("acme", ["ingest", "read", "admin"])
        return token
    finally:
        await gw.aclose()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    """A data dir with an admin token, for the gateways ``APP`` starts there."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(ENV, Fernet.generate_key().decode())  # so that sources with secrets can be stored
        APP.config = make_config(tmp_path_factory.mktemp("conformance") / "data")
        try:
            APP.token = asyncio.run(_admin_token(APP.config))
            try:
                with schemathesis_asgi.get_client(APP) as client:
                    assert client.get("/openapi.json").json() == orjson.loads(orjson.dumps(api_spec()))
            finally:
                schemathesis_asgi.shutdown_lifespans()
            yield
        finally:
            APP.config = APP.token = None


@schema.parametrize()
def test_conformance(case, gateway):
    response = case.call()
    excluded = []
    prefixes = UNDESCRIBABLE.get((case.method, case.path))
    if prefixes and response.status_code == 400 and response.json()["detail"].startswith(prefixes):
        excluded.append(positive_data_acceptance)
    case.validate_response(response, excluded_checks=excluded)
