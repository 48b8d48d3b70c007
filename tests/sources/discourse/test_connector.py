"""Discourse connector against the fake forum (real HTTP on 127.0.0.1)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from sluiceway.feedback.pull import PullError
from sluiceway.sources.discourse import DiscourseConnector
from sluiceway.sources.discourse.config import DiscourseSettings
from tests.fakes.harness import NOW, Puller, fails_midway_then_recovers

T0 = NOW.timestamp() - 30 * 86400
POSTS = "/posts.json"


def puller(fake, secrets=None, **settings) -> Puller:
    return Puller(DiscourseConnector, {"base_url": fake.url + "/", "api_username": "system", **settings},
                  {"api_key": "disc-key"} if secrets is None else secrets)


def all_ids(fake) -> set[str]:
    return {str(i) for i in fake.posts}


async def test_every_post_once_across_restarts(fake):
    fake.add(120, start=T0, gap=2)
    p = puller(fake)
    r = await p.run()
    calls = fake.calls(POSTS)
    assert (r.items, r.pages, len(calls)) == (120, 4, 4)  # 50 + 50 + 20 + an empty page
    assert all(c.headers["api-key"] == "disc-key" and c.headers["api-username"] == "system" for c in calls)
    assert all(c.headers["accept"] == "application/json" for c in calls)
    assert "before" not in calls[0].params
    assert [int(c.params["before"]) for c in calls[1:]] == [min(int(i) for i in p.ids()[:50]),
                                                          min(int(i) for i in p.ids()[:100]),
                                                          min(int(i) for i in p.ids())]
    assert p.saved == [{"last_post_id": max(fake.posts)}]

    fake.add(60, start=T0 + 86400)
    r = await p.run()
    assert r.items == 60 and len(fake.calls(POSTS)) == 6  # 50, then 10 new + old ones: stop there
    assert (await p.run()).items == 0
    assert len(p.ids()) == len(set(p.ids())) and set(p.ids()) == all_ids(fake)


async def test_item_fields(fake):
    [post] = fake.add(1, start=T0)
    p = puller(fake)
    await p.run()
    [it] = p.items
    base = fake.url
    assert (it.source_type, it.source_instance, it.external_id) == ("discourse", base, str(post.id))
    assert (it.author, it.body) == ("user0", "Post **0** text")
    assert it.created_at.timestamp() == pytest.approx(T0, abs=0.001) and it.created_at.tzinfo is not None
    assert it.metadata == {"topic_id": 4500, "topic_title": "Topic 4500", "topic_slug": "topic-4500",
                           "post_number": 1, "category_id": 7, "user_id": 100 + post.id % 7,
                           "url": f"{base}/t/topic-4500/4500/1"}


async def test_cooked_html_is_the_fallback_body(fake, monkeypatch):
    fake.add(1, start=T0)
    render = fake.render
    monkeypatch.setattr(fake, "render", lambda post: {k: v for k, v in render(post).items() if k != "raw"})
    p = puller(fake)
    await p.run()
    assert p.items[0].body == "Post 0 text & more"


async def test_edits_to_old_posts_are_not_seen(fake):
    """A documented limit: /posts.json lists posts by id, an edit keeps the id."""
    posts = fake.add(3, start=T0)
    p = puller(fake)
    await p.run()
    fake.edit(posts[0].id, "edited", NOW.timestamp())
    assert (await p.run()).items == 0


async def test_public_forum_without_key(fake):
    fake.api_key = None
    fake.add(3, start=T0)
    p = puller(fake, secrets={}, api_username=None)
    assert (await p.run()).items == 3
    assert "api-key" not in fake.calls(POSTS)[0].headers
    with pytest.raises(PullError, match="go together") as e:
        await puller(fake, secrets={}).run()  # a username without a key
    assert e.value.permanent


@pytest.mark.parametrize("header", [True, False])
async def test_rate_limit_honours_retry_after_then_wait_seconds(fake, header):
    fake.add(60, start=T0)
    fake.fail("429", after=1, wait=12, header=header)
    p = puller(fake)
    assert (await p.run()).items == 60
    assert p.waits == [12.0]


async def test_server_errors_and_timeouts_are_retried(fake):
    fake.add(60, start=T0)
    fake.fail("502")
    fake.fail("hang", after=1)
    p = puller(fake)
    assert (await p.run()).items == 60 and len(p.waits) == 2


@pytest.mark.parametrize("fault, permanent", [("403", True), ("500", False)])
async def test_run_failing_midway_keeps_the_cursor(fake, fault, permanent):
    fake.add(10, start=T0)
    await fails_midway_then_recovers(puller(fake), fake, fault, permanent, lambda: fake.add(80, start=T0 + 3600),
                                     lambda: all_ids(fake))


def test_settings_are_strict():
    with pytest.raises(ValidationError):
        DiscourseSettings.model_validate({})  # base_url is required
    with pytest.raises(ValidationError):
        DiscourseSettings.model_validate({"base_url": "https://forum.example", "category": 3})
    assert DiscourseSettings.model_validate({"base_url": "https://forum.example/"}).base_url == "https://forum.example"
