"""X recent-search connector against the fake X API v2 (real HTTP on 127.0.0.1)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from pydantic import ValidationError

from sluiceway.feedback.pull import PullError
from sluiceway.sources.x import XConnector
from sluiceway.sources.x.config import XSettings
from sluiceway.sources.x.tweets import snowflake_time
from tests.fakes.harness import NOW, Puller, fails_midway_then_recovers

T0 = NOW.timestamp() - 2 * 86400
SEARCH = "/2/tweets/search/recent"


def puller(fake, **settings) -> Puller:
    return Puller(XConnector, {"query": "#feedback", "base_url": fake.url, "max_results": 10, **settings},
                  {"bearer_token": "x-app-token"})


async def test_every_post_once_across_restarts(fake):
    posts = fake.add(25, start=T0)
    p = puller(fake)
    r = await p.run()
    assert (r.items, r.pages) == (25, 3)
    first, second, third = fake.calls(SEARCH)
    assert first.headers["authorization"] == "Bearer x-app-token"
    assert first.params == {"query": "#feedback", "max_results": "10", "sort_order": "recency",
                            "tweet.fields": "created_at,lang,author_id,edit_history_tweet_ids",
                            "start_time": (NOW - timedelta(days=7) + timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", first.params["start_time"])
    assert second.params["next_token"] and third.params["next_token"] != second.params["next_token"]
    assert "since_id" not in second.params and second.params["start_time"] == first.params["start_time"]
    assert p.saved == [{"since_id": str(posts[-1].id)}]  # the first page's newest_id, saved at the end

    fake.add(3, start=T0 + 3600 * 30)
    r = await p.run()
    assert r.items == 3
    again = fake.calls(SEARCH)[-1]
    assert again.params["since_id"] == str(posts[-1].id) and "start_time" not in again.params
    assert (await p.run()).items == 0
    assert p.cursor == {"since_id": str(max(x.id for x in fake.posts))}
    assert sorted(p.ids()) == sorted(str(x.id) for x in fake.posts)


async def test_no_results_keeps_the_cursor(fake):
    p = puller(fake)
    r = await p.run()  # no `data` key, result_count 0
    assert (r.items, r.pages, p.saved) == (0, 1, [])
    fake.add(2, start=T0)
    await p.run()
    assert "start_time" in fake.calls(SEARCH)[-1].params  # still the first run's window
    assert (await p.run()).items == 0 and len(p.items) == 2 and p.saved[-1] == p.cursor


async def test_item_fields_and_edits_update_the_original(fake):
    [post] = fake.add(1, start=T0)
    p = puller(fake)
    await p.run()
    [it] = p.items
    assert (it.source_type, it.source_instance, it.external_id) == ("x", "#feedback", str(post.id))
    assert (it.author, it.language, it.body) == ("2244994945", "en", post.text)
    assert it.created_at == it.updated_at and abs(it.created_at.timestamp() - T0) < 0.01
    assert it.metadata["tweet_id"] == str(post.id)

    new = fake.edit(post, "edited #feedback: now it works", T0 + 600)
    await p.run()
    edited = p.items[-1]
    assert edited.external_id == str(post.id) and edited.body == "edited #feedback: now it works"
    assert edited.metadata == {"tweet_id": str(new.id), "edit_history_tweet_ids": [str(post.id), str(new.id)],
                               "url": f"https://x.com/i/web/status/{new.id}"}
    assert edited.created_at == snowflake_time(str(post.id)) and edited.updated_at > edited.created_at


async def test_older_version_met_in_the_same_run_is_skipped(fake):
    [post] = fake.add(1, start=T0)
    fake.edit(post, "v2 #feedback", T0 + 60)
    p = puller(fake)
    await p.run()
    assert [i.body for i in p.items] == ["v2 #feedback"]


async def test_rate_limit_waits_until_reset(fake):
    fake.add(25, start=T0)
    fake.fail("429", after=1, wait=42)
    p = puller(fake)
    assert (await p.run()).items == 25
    assert p.waits == [42.0]
    assert fake.calls(SEARCH)[2].params == fake.calls(SEARCH)[1].params  # the same page asked again


async def test_rate_limit_beyond_max_wait_fails_the_run(fake):
    fake.add(5, start=T0)
    fake.fail("429", wait=3600)
    p = puller(fake)
    p.max_wait = 900
    with pytest.raises(PullError, match="rate limited"):
        await p.run()
    assert p.saved == [] and p.items == []


async def test_server_errors_and_timeouts_are_retried(fake):
    fake.add(25, start=T0)
    fake.fail("503")
    fake.fail("hang", after=2)
    p = puller(fake)
    assert (await p.run()).items == 25 and len(p.waits) == 2 and len(set(p.ids())) == 25


@pytest.mark.parametrize("fault, permanent", [("401", True), ("hang", False)])
async def test_run_failing_midway_keeps_the_cursor(fake, fault, permanent):
    fake.add(5, start=T0)
    await fails_midway_then_recovers(puller(fake), fake, fault, permanent, lambda: fake.add(25, start=T0 + 3600),
                                     lambda: {str(x.id) for x in fake.posts})


def test_settings_are_strict():
    assert XSettings.model_validate({"query": "q"}).lookback == 7 * 86400 - 600
    assert XSettings.model_validate({"query": "q", "lookback": "2d"}).lookback == 2 * 86400
    for bad in ({"query": "q", "max_results": 5}, {"query": "q", "lookback": "8d"}, {"query": ""},
                {"query": "q", "since": 1}, {"query": "q", "base_url": "ftp://x"}):
        with pytest.raises(ValidationError):
            XSettings.model_validate(bad)
