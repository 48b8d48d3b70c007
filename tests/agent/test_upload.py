from __future__ import annotations

import io
import re
import socket

import pytest

from sluiceway.agent.upload import Uploader, UploadRejected
from sluiceway.errors import TransientError
from tests.agent.conftest import make_cfg
from tests.agent.fake_ingress import PATH, Reply

ARCHIVE = b"\x1f\x8b\x08\x00 pretend gzip bytes \x00\xff" * 50


def test_request_shape(data_dir, ingress):
    up = Uploader(make_cfg(data_dir, ingress.url))
    counted = []
    assert up.upload(io.BytesIO(ARCHIVE), counted.append) == "req-1"
    (req,) = ingress.uploads
    assert req.path == PATH
    names = [k.lower() for k, _ in req.headers]
    assert sorted(names) == sorted(["host", "accept-encoding", "user-agent", "authorization", "content-length",
                                    "content-type"])
    assert req.header("Accept-Encoding") == "identity"
    assert req.header("User-Agent") == "openshift-lightspeed-operator/user-data-collection cluster/test-instance"
    assert req.header("Authorization") == "Bearer sekret"
    assert re.fullmatch(r"multipart/form-data; boundary=[0-9a-f]{32}", req.content_type)
    (part,) = req.parts
    assert part["headers"]["Content-Disposition"] == 'form-data; name="file"; filename="lightspeed-assistant.tgz"'
    assert part["content_type"] == "application/vnd.redhat.ols.periodic+tar"
    assert part["data"] == ARCHIVE
    assert sum(counted) == len(ARCHIVE)


@pytest.mark.parametrize("reply", [Reply(500), Reply(503), Reply(429)])
def test_server_errors_and_429_are_transient(data_dir, ingress, reply):
    ingress.script.append(reply)
    with pytest.raises(TransientError, match=str(reply.status)):
        Uploader(make_cfg(data_dir, ingress.url)).upload(io.BytesIO(ARCHIVE))


def test_retry_after_is_read(data_dir, ingress):
    ingress.script.append(Reply(429, headers={"Retry-After": "7"}))
    with pytest.raises(TransientError) as e:
        Uploader(make_cfg(data_dir, ingress.url)).upload(io.BytesIO(ARCHIVE))
    assert e.value.retry_after == 7


@pytest.mark.parametrize("reply", [Reply(400, b"File or upload field not found"), Reply(401), Reply(413), Reply(415),
                                   Reply(200, b'{"request_id": "x"}'), Reply(201, b'{"request_id": "x"}')])
def test_other_answers_are_rejections(data_dir, ingress, reply):
    ingress.script.append(reply)
    with pytest.raises(UploadRejected) as e:
        Uploader(make_cfg(data_dir, ingress.url)).upload(io.BytesIO(ARCHIVE))
    assert e.value.status == reply.status


@pytest.mark.parametrize("body", [b'{"upload": {}}', b"accepted", b'{"request_id": ""}', b"[1]"])
def test_202_without_request_id_is_a_failure_not_a_crash(data_dir, ingress, body):
    ingress.script.append(Reply(202, body))
    with pytest.raises(UploadRejected, match="202 without a request_id"):
        Uploader(make_cfg(data_dir, ingress.url)).upload(io.BytesIO(ARCHIVE))


def test_timeout_is_transient(data_dir, ingress):
    ingress.script.append(Reply(hang=True))
    with pytest.raises(TransientError, match="no answer within 0.2s"):
        Uploader(make_cfg(data_dir, ingress.url, ingress_connection_timeout=0.2)).upload(io.BytesIO(ARCHIVE))


def test_connection_refused_is_transient(data_dir):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(TransientError, match="connection failed"):
        Uploader(make_cfg(data_dir, f"http://127.0.0.1:{port}/up")).upload(io.BytesIO(ARCHIVE))
