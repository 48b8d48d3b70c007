"""Google Play connector against the fake Android Publisher API (real HTTP on 127.0.0.1)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from pydantic import ValidationError

from sluiceway.sources.playstore import PlayStoreConnector
from sluiceway.sources.playstore.config import PlayStoreSecrets, PlayStoreSettings
from sluiceway.record import UTC
from tests.fakes.harness import NOW, Puller, fails_midway_then_recovers

T0 = NOW.timestamp() - 3 * 86400
REVIEWS = "/androidpublisher/v3/applications/com.example.app/reviews"


def puller(fake, secrets=None, **settings) -> Puller:
    return Puller(PlayStoreConnector, {"package_name": "com.example.app", "base_url": fake.url,
                                       "max_results": 10, **settings},
                  secrets or {"access_token": "static-token"})


async def test_every_review_once_across_restarts(fake):
    fake.add(25, start=T0)
    p = puller(fake)
    r = await p.run()
    assert (r.items, r.pages) == (25, 3)
    calls = fake.calls(REVIEWS)
    assert [c.params.get("maxResults") for c in calls] == ["10"] * 3
    assert "token" not in calls[0].params and calls[1].params["token"] and calls[2].params["token"]
    assert all(c.headers["authorization"] == "Bearer static-token" for c in calls)
    assert p.saved == [p.cursor]  # newest first: one cursor, after the last page
    newest = max(r.modified for r in fake.reviews.values())
    assert p.cursor == {"last_modified": datetime.fromtimestamp(newest, UTC).isoformat().replace("+00:00", "Z"),
                        "ids_at": ["gp:AOqpTO00024"]}

    fake.add(5, start=T0 + 86400)
    r = await p.run()
    assert (r.items, r.pages) == (5, 1)  # the first page already reaches the cursor: no more paging
    assert (await p.run()).items == 0
    assert len(p.ids()) == len(set(p.ids())) == 30 == len(fake.reviews)


async def test_item_fields(fake):
    [r] = fake.add(1, start=T0)
    r.reply = "Thanks, fixed in 4.2.2"
    p = puller(fake, translation_language="de")
    await p.run()
    assert fake.calls(REVIEWS)[0].params["translationLanguage"] == "de"
    [it] = p.items
    assert (it.source_type, it.source_instance, it.external_id) == ("playstore", "com.example.app", r.review_id)
    assert it.created_at == it.updated_at and it.created_at.timestamp() == pytest.approx(r.modified, abs=1e-6)
    assert it.created_at.tzinfo is not None and it.created_at.microsecond == 125000
    assert (it.author, it.rating, it.language, it.body) == (r.author, r.rating, "en", f"[de] {r.text}")
    assert it.metadata["original_text"] == r.text
    assert it.metadata["developer_reply"]["text"] == "Thanks, fixed in 4.2.2"
    assert it.metadata["app_version_name"] == "4.2.1" and it.metadata["device_metadata"]["manufacturer"] == "Samsung"


async def test_edited_review_is_emitted_again(fake):
    reviews = fake.add(15, start=T0)
    p = puller(fake)
    await p.run()
    fake.edit(reviews[3].review_id, "Changed my mind: 5 stars", NOW.timestamp() - 3600)
    r = await p.run()
    assert r.items == 1
    assert p.items[-1].external_id == reviews[3].review_id and p.items[-1].body == "Changed my mind: 5 stars"
    assert p.items[-1].updated_at.timestamp() == pytest.approx(NOW.timestamp() - 3600, abs=1)
    assert (await p.run()).items == 0


async def test_review_sharing_the_cursor_time_is_not_lost(fake):
    [a] = fake.add(1, start=T0)
    p = puller(fake)
    await p.run()
    [b] = fake.add(1, start=T0)
    b.modified = a.modified  # same lastModified, arrived after the first run
    await p.run()
    await p.run()
    assert p.ids() == [a.review_id, b.review_id]


async def test_service_account_token_is_minted_once_and_renewed_after_expiry(fake):
    fake.add(12, start=T0)
    p = puller(fake, {"service_account_json": fake.service_account_json()})
    await p.run()
    await p.run()
    assert len(fake.calls("/token")) == 1
    form = fake.calls("/token")[0].body.decode()
    assert "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer" in form and "assertion=" in form
    assert {c.headers["authorization"] for c in fake.calls(REVIEWS)} == {"Bearer ya29.fake-0"}
    p.now += timedelta(hours=2)
    await p.run()
    assert len(fake.calls("/token")) == 2
    assert fake.calls(REVIEWS)[-1].headers["authorization"] == "Bearer ya29.fake-1"


async def test_token_url_setting_overrides_the_key_file(fake):
    fake.add(3, start=T0)
    key = fake.service_account_json(token_uri="https://oauth2.googleapis.com/token")
    # the JWT audience follows the URL actually used, which the fake checks
    p = puller(fake, {"service_account_json": key}, token_url=f"{fake.url}/token/")
    assert (await p.run()).items == 3
    assert len(fake.calls("/token")) == 1


async def test_rate_limit_backs_off_or_honours_retry_after(fake):
    fake.add(25, start=T0)
    fake.fail("429")  # Google's envelope, no header: exponential backoff
    fake.fail("429", after=1, wait=30)  # with Retry-After: exactly that
    p = puller(fake)
    r = await p.run()
    assert r.items == 25 and len(p.waits) == 2
    assert p.waits[0] <= 0.01 and p.waits[1] == 30.0


async def test_server_errors_and_timeouts_are_retried(fake):
    fake.add(25, start=T0)
    fake.fail("500")
    fake.fail("503", after=1)
    fake.fail("hang", after=2)
    p = puller(fake)
    assert (await p.run()).items == 25
    assert len(p.waits) == 3 and len(fake.calls(REVIEWS)) == 6
    assert len(set(p.ids())) == 25


@pytest.mark.parametrize("fault, permanent", [("401", True), ("500", False)])
async def test_run_failing_midway_keeps_the_cursor(fake, fault, permanent):
    fake.add(12, start=T0)
    await fails_midway_then_recovers(puller(fake), fake, fault, permanent, lambda: fake.add(25, start=T0 + 86400),
                                     lambda: set(fake.reviews))


def test_settings_and_secrets_are_strict():
    with pytest.raises(ValidationError):
        PlayStoreSettings.model_validate({"package_name": "com.example.app", "pageSize": 10})
    with pytest.raises(ValidationError):
        PlayStoreSettings.model_validate({"package_name": "not a package"})
    with pytest.raises(ValidationError, match="exactly one"):
        PlayStoreSecrets.model_validate({})
    with pytest.raises(ValidationError, match="private_key"):
        PlayStoreSecrets.model_validate({"service_account_json": '{"client_email": "a@b"}'})
    with pytest.raises(ValidationError) as e:
        PlayStoreSecrets.model_validate({"service_account_json": {"client_email": "a@b", "private_key": "SECRETPEM"}})
    assert all("SECRETPEM" not in err["msg"] for err in e.value.errors())  # messages shown never echo the key
    s = PlayStoreSecrets.model_validate({"access_token": "ya29.S3CR3T"})
    assert "S3CR3T" not in repr(s)
