"""Intercom source settings and secrets."""

from __future__ import annotations

from pydantic import Field, SecretStr

from sluiceway.config.types import StrictModel
from sluiceway.feedback.platform import BaseUrl


class IntercomSettings(StrictModel):
    base_url: BaseUrl = "https://api.intercom.io"  # EU: https://api.eu.intercom.io, AU: …au…
    api_version: str = Field("2.11", pattern=r"^2\.\d+$")  # the 2.x conversation shape (``source``)
    per_page: int = Field(150, ge=1, le=150)
    workspace: str = ""  # source_instance of the items, pulled and pushed alike (e.g. the app id)


class IntercomSecrets(StrictModel):
    access_token: SecretStr
    client_secret: SecretStr | None = None  # verifies webhook notifications (X-Hub-Signature); not used to pull
