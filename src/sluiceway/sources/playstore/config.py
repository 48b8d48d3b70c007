"""Google Play source settings and secrets."""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field, SecretStr, field_validator, model_validator

from sluiceway.config.types import StrictModel
from sluiceway.feedback.platform import BaseUrl

DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"


class PlayStoreSettings(StrictModel):
    package_name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)+$")
    base_url: BaseUrl = "https://androidpublisher.googleapis.com"
    max_results: int = Field(100, ge=1, le=100)
    translation_language: str | None = None  # e.g. "en": ``text`` translated, original in metadata
    token_url: BaseUrl | None = None  # overrides the service account key's ``token_uri``


class PlayStoreSecrets(StrictModel):
    """Either an OAuth ``access_token`` (short-lived, e.g. for a quick test) or the service
    account key file's JSON (``client_email``, ``private_key``, ``token_uri``)."""

    access_token: SecretStr | None = None
    service_account_json: SecretStr | None = None

    @field_validator("service_account_json", mode="before")
    @classmethod
    def _as_text(cls, v: Any) -> Any:
        return json.dumps(v) if isinstance(v, dict) else v

    @field_validator("service_account_json")
    @classmethod
    def _key_file(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None:
            service_account(v.get_secret_value())
        return v

    @model_validator(mode="after")
    def _one(self) -> "PlayStoreSecrets":
        if (self.access_token is None) == (self.service_account_json is None):
            raise ValueError("give exactly one of access_token or service_account_json")
        return self


def service_account(text: str) -> dict[str, str]:
    """The parts of a Google service account key this source uses (errors never echo the key)."""
    try:
        info = json.loads(text)
    except ValueError:
        raise ValueError("service_account_json is not JSON (paste the key file's content)") from None
    if not isinstance(info, dict):
        raise ValueError("service_account_json must be a JSON object")
    missing = [k for k in ("client_email", "private_key") if not isinstance(info.get(k), str) or not info[k]]
    if missing:
        raise ValueError(f"service_account_json lacks {', '.join(missing)}")
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(info["private_key"].encode(), password=None)
    except (ValueError, TypeError):
        raise ValueError("service_account_json: private_key is not a PEM private key") from None
    if not isinstance(key, RSAPrivateKey):
        raise ValueError("service_account_json: private_key must be an RSA key")
    return {"client_email": info["client_email"], "private_key": info["private_key"],
            "token_uri": info.get("token_uri") or DEFAULT_TOKEN_URI}
