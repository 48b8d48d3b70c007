"""Intercom connector against the fake REST API (real HTTP on 127.0.0.1)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from sluiceway.sources.intercom import IntercomConnector
from sluiceway.sources.intercom.config import IntercomSecrets, IntercomSettings
from tests.fakes.harness import NOW, Puller, fails_midway_then_recovers

T0 = int(NOW.timestamp()) - 5 * 86400
SEARCH = "/conversations/search"


def puller(fake, **settings) -> Puller:
    return Puller(IntercomConnector, {"base_url": fake.url, "per_page": 15, "workspace": "a86dr8yl", **settings},
                  {"access_token": "ic-token", "client_secret": "hook-secret"})


async def test_every_conversation_once_across_restarts(fake):
    convs = fake.add(40, start=T0, same_second=2)
    p = puller(fake)
    r = await p.run()
    calls = fake.calls(SEARCH)
    assert (r.items, r.pages, len(calls)) == (40, 3, 3)
    for c in calls:
        assert c.method == "POST"
        assert (c.headers["authorization"], c.headers["accept"], c.headers["intercom-version"]) == \
            ("Bearer ic-token", "application/json", "2.11")
    assert calls[0].json() == {"query": {"field": "updated_at", "operator": ">", "value": 0},
                               "pagination": {"per_page": 15}}
    assert calls[1].json()["pagination"]["starting_after"] and calls[2].json()["pagination"]["starting_after"]
    top = max(c.updated for c in convs)
    assert p.saved == [{"updated_at": top, "ids_at": sorted(c.id for c in convs if c.updated == top)}]

    [late] = fake.add(1, start=top)  # same second as the mark, arrived after the run
    fake.add(4, start=T0 + 86400)
    r = await p.run()
    assert r.items == 5 and late.id in p.ids()[-5:]
    assert fake.calls(SEARCH)[-1].json()["query"]["value"] == top - 1
    assert (await p.run()).items == 0
    assert len(p.ids()) == len(set(p.ids())) == len(fake.conversations)


async def test_updated_conversation_is_emitted_again(fake):
    convs = fake.add(20, start=T0)
    p = puller(fake)
    await p.run()
    fake.edit(convs[5].id, "<p>Still broken<br>in 2.4</p>", T0 + 86400)
    assert (await p.run()).items == 1
    assert (p.items[-1].external_id, p.items[-1].body) == (convs[5].id, "Still broken\nin 2.4")
    assert p.items[-1].updated_at.timestamp() == T0 + 86400
    assert (await p.run()).items == 0


async def test_item_fields(fake):
    [c] = fake.add(1, start=T0)
    p = puller(fake)
    await p.run()
    [it] = p.items
    assert (it.source_type, it.source_instance, it.external_id) == ("intercom", "a86dr8yl", c.id)
    assert it.body == "Conversation 0: the export button & more"
    assert (it.author, it.rating, it.language) == (c.author_id, None, None)
    assert (it.created_at.timestamp(), it.updated_at.timestamp()) == (c.created, c.updated)
    m = it.metadata
    assert (m["state"], m["open"], m["read"], m["contacts"], m["tags"]) == ("open", True, False, [c.author_id], ["bug"])
    assert m["author"] == {"type": "user", "id": c.author_id, "name": "Jane Roe", "email": "jane@example.com"}


async def test_changes_during_the_run_are_asked_again(fake):
    """The mark stops a second before the search's own clock (its Date header)."""
    fake.add(3, start=T0)
    [fresh] = fake.add(1, start=int(NOW.timestamp()))
    p = puller(fake)
    await p.run()
    assert p.cursor["updated_at"] < fresh.updated
    assert (await p.run()).items == 1 and p.items[-1].external_id == fresh.id  # once more, harmlessly
    fake.clock = lambda: NOW.timestamp() + 10
    await p.run()
    assert (await p.run()).items == 0


async def test_rate_limit_waits_until_reset(fake):
    fake.add(40, start=T0)
    fake.fail("429", after=2, wait=7)
    p = puller(fake)
    assert (await p.run()).items == 40
    assert p.waits == [7.0]
    assert fake.calls(SEARCH)[3].json() == fake.calls(SEARCH)[2].json()


async def test_server_errors_and_timeouts_are_retried(fake):
    fake.add(40, start=T0)
    fake.fail("500")
    fake.fail("hang", after=1)
    p = puller(fake)
    assert (await p.run()).items == 40 and len(p.waits) == 2 and len(set(p.ids())) == 40


@pytest.mark.parametrize("fault, permanent", [("401", True), ("500", False)])
async def test_run_failing_midway_keeps_the_cursor(fake, fault, permanent):
    fake.add(10, start=T0)
    await fails_midway_then_recovers(puller(fake), fake, fault, permanent, lambda: fake.add(40, start=T0 + 3600),
                                     lambda: set(fake.conversations))


def test_settings_and_secrets_are_strict():
    s = IntercomSettings.model_validate({})
    assert (s.base_url, s.api_version, s.per_page, s.workspace) == ("https://api.intercom.io", "2.11", 150, "")
    for bad in ({"per_page": 500}, {"api_version": "1.4"}, {"updated_since": 1}):
        with pytest.raises(ValidationError):
            IntercomSettings.model_validate(bad)
    with pytest.raises(ValidationError):
        IntercomSecrets.model_validate({"client_secret": "x"})  # the access token is required
