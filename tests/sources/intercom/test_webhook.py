"""Intercom webhook notifications: X-Hub-Signature and notification → item."""

from __future__ import annotations

import json

import pytest

from sluiceway.sources.intercom.conversations import conversation_item
from sluiceway.sources.intercom.webhook import item_from_notification, verify_signature
from tests.fakes.intercom import Conversation, render

# Vectors computed outside Python: printf '%s' "$BODY" | openssl dgst -sha1 -hmac "$KEY"
PING = b'{"type":"notification_event","topic":"ping","data":{"item":{"type":"ping","message":"hi"}}}'
PING_SIG = "sha1=b439ee1d686fc1cc1f86be90c942b8b31d8d0cd6"  # key client-secret-123
FOX = b"The quick brown fox jumps over the lazy dog"
FOX_SIG = "sha1=de7c9b85b8b78aa6bc8a7a36f70a90701c9db4d9"  # key "key" (also RFC 2104 examples' classic)
EMPTY_SIG = "sha1=f42bb0eeb018ebbd4597ae7213711ec60760843f"  # key "key", empty body

NOTIFICATION = {
    "type": "notification_event", "app_id": "a86dr8yl", "id": "notif_78c122d0-5f2b-11e9-8cda-b3fe7cd4a9b8",
    "topic": "conversation.user.created",
    "data": {"type": "notification_event_data",
             "item": {"type": "conversation", "id": "147", "created_at": 1715328000, "updated_at": 1715328000,
                      "source": {"type": "conversation", "body": "<p>The export button does nothing</p>",
                                 "author": {"type": "user", "id": "5310d8e8598c9a0b24000002"}}}},
    "links": {}, "delivery_status": "pending", "delivery_attempts": 1, "delivered_at": 0,
    "first_sent_at": 1715328001, "created_at": 1715328001, "self": None}


def test_signature_known_vectors():
    assert verify_signature("client-secret-123", PING, PING_SIG)
    assert verify_signature("key", FOX, FOX_SIG)
    assert verify_signature("key", b"", EMPTY_SIG)
    assert verify_signature("key", FOX, FOX_SIG.upper().replace("SHA1=", "sha1="))
    assert verify_signature("key", FOX, f"  {FOX_SIG}\n")


@pytest.mark.parametrize("secret, body, header", [
    ("key", FOX + b".", FOX_SIG),  # body changed
    ("other", FOX, FOX_SIG),  # wrong secret
    ("key", FOX, None), ("key", FOX, ""),  # missing
    ("key", FOX, FOX_SIG[5:]),  # no sha1= prefix
    ("key", FOX, "sha256=" + FOX_SIG[5:]),
    ("key", FOX, "sha1=dé7c"),  # not ASCII: no crash
    ("", FOX, FOX_SIG),
])
def test_signature_rejects(secret, body, header):
    assert not verify_signature(secret, body, header)


def test_notification_maps_to_the_pulled_identity():
    item = item_from_notification(json.loads(json.dumps(NOTIFICATION)), "a86dr8yl")
    assert item is not None
    assert (item.source_type, item.source_instance, item.external_id) == ("intercom", "a86dr8yl", "147")
    assert item.body == "The export button does nothing" and item.author == "5310d8e8598c9a0b24000002"
    assert item.created_at.timestamp() == 1715328000 and item.created_at.tzinfo is not None
    pulled = conversation_item(render(Conversation("147", "<p>x</p>", 1715328000, 1715331600)), "a86dr8yl")
    assert (pulled.source_type, pulled.source_instance, pulled.external_id) == \
        (item.source_type, item.source_instance, item.external_id)
    assert item_from_notification(NOTIFICATION).source_instance == ""


@pytest.mark.parametrize("payload", [
    json.loads(PING),
    {**NOTIFICATION, "topic": "contact.user.created", "data": {"item": {"type": "contact", "id": "1"}}},
    {**NOTIFICATION, "topic": "conversation.deleted", "data": {"item": {"type": "conversation", "id": "147"}}},
    {**NOTIFICATION, "data": None}, {"topic": None},
])
def test_notifications_without_an_item(payload):
    assert item_from_notification(payload) is None


def test_malformed_conversation_is_an_error():
    bad = {**NOTIFICATION, "data": {"item": {"type": "conversation", "id": "147"}}}
    with pytest.raises(ValueError):
        item_from_notification(bad)
