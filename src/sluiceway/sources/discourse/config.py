"""Discourse source settings and secrets (self-hosted forums: ``base_url`` is required)."""

from __future__ import annotations

from pydantic import SecretStr

from sluiceway.config.types import StrictModel
from sluiceway.feedback.platform import BaseUrl


class DiscourseSettings(StrictModel):
    base_url: BaseUrl  # the forum, e.g. https://meta.discourse.org; also the items' source_instance
    api_username: str | None = None  # goes with the api_key secret (a public forum needs neither)


class DiscourseSecrets(StrictModel):
    api_key: SecretStr | None = None
