"""X (Twitter) recent-search source settings and secrets."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from sluiceway.config.types import Duration, StrictModel
from sluiceway.feedback.platform import BaseUrl

WINDOW = 7 * 86400  # recent search covers the last seven days
MARGIN = 600  # a start_time at the window's very edge is refused by the time it arrives


class XSettings(StrictModel):
    query: str = Field(min_length=1, max_length=4096)  # 512 characters on self-serve tiers
    base_url: BaseUrl = "https://api.x.com"
    max_results: int = Field(100, ge=10, le=100)
    lookback: Duration = WINDOW - MARGIN  # first run only: how far back to start

    @field_validator("lookback")
    @classmethod
    def _lookback(cls, v: float) -> float:
        if not 0 < v <= WINDOW:
            raise ValueError("lookback must be more than 0 and at most 7d (recent search's window)")
        return v


class XSecrets(StrictModel):
    bearer_token: SecretStr  # app-only bearer token
