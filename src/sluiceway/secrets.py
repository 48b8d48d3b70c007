"""Credentials at rest: encrypted with a key from the environment, masked wherever shown.

``SLUICE_SECRET_KEY`` holds a Fernet key (``sluice secrets keygen`` prints a new one;
AES-128-CBC + HMAC-SHA256, from ``cryptography``). Several keys separated by commas rotate:
the first encrypts, all decrypt. Without a key, storing a secret is an error that names the
variable; nothing is ever stored in clear.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import orjson

from sluiceway.errors import ConfigError

ENV = "SLUICE_SECRET_KEY"
MASK = "**********"


class SecretBox:
    def __init__(self, keys: str | None):
        from cryptography.fernet import Fernet, MultiFernet

        self._box = None
        if keys:
            try:
                self._box = MultiFernet([Fernet(k.strip().encode()) for k in keys.split(",") if k.strip()])
            except ValueError:
                raise ConfigError(f"{ENV} is not a valid key; create one with `sluice secrets keygen`") from None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "SecretBox":
        return cls((env if env is not None else os.environ).get(ENV))

    @property
    def available(self) -> bool:
        return self._box is not None

    def encrypt(self, values: dict[str, Any]) -> str | None:
        """Encrypted JSON of ``values`` (None for no secrets)."""
        if not values:
            return None
        if self._box is None:
            raise ConfigError(f"{ENV} is not set: it is needed to store credentials encrypted "
                              "(create one with `sluice secrets keygen`)")
        return self._box.encrypt(orjson.dumps(values)).decode()

    def decrypt(self, token: str | None) -> dict[str, Any]:
        if not token:
            return {}
        if self._box is None:
            raise ConfigError(f"{ENV} is not set: stored credentials cannot be read")
        from cryptography.fernet import InvalidToken

        try:
            return orjson.loads(self._box.decrypt(token.encode()))
        except InvalidToken:
            raise ConfigError(f"stored credentials cannot be decrypted with {ENV} (wrong or rotated-out key)") from None


def generate_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def mask(values: Mapping[str, Any]) -> dict[str, str]:
    """Secrets as shown anywhere: the key names, never the values."""
    return {k: MASK for k, v in values.items() if v not in (None, "")}
