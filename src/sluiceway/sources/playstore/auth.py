"""OAuth 2.0 for a Google service account: the JWT-bearer grant (RFC 7523).

A JWT ``{iss: client_email, scope, aud: token_uri, iat, exp: iat + 1 h}`` signed RS256 with the
key's private key is POSTed (form) to the token URI as
``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<jwt>``; the answer's
``access_token`` is cached (per account, token URI and scope, process-wide) until a minute
before ``expires_in`` runs out, so every run does not mint a new one.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from sluiceway.feedback.platform import PlatformConnector, secret
from sluiceway.feedback.pull import PullError
from sluiceway.sources.playstore.config import service_account

SCOPE = "https://www.googleapis.com/auth/androidpublisher"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
LIFETIME = 3600
EARLY = 60  # renew this many seconds before expiry

_cache: dict[tuple[str, str, str], tuple[str, float]] = {}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed_jwt(client_email: str, private_key_pem: str, audience: str, now: int, scope: str = SCOPE) -> str:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    header = {"alg": "RS256", "typ": "JWT"}
    claims = {"iss": client_email, "scope": scope, "aud": audience, "iat": now, "exp": now + LIFETIME}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    key: Any = load_pem_private_key(private_key_pem.encode(), password=None)
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64(signature)}"


async def bearer_token(connector: PlatformConnector) -> str:
    """The access token to send: the configured one, or one minted from the service account."""
    given = secret(connector.secrets.access_token)
    if given:
        return given
    info = service_account(secret(connector.secrets.service_account_json) or "")
    token_uri = connector.settings.token_url or info["token_uri"]
    key = (info["client_email"], token_uri, SCOPE)
    now = connector.now().timestamp()
    cached = _cache.get(key)
    if cached and cached[1] > now:
        return cached[0]
    assertion = signed_jwt(info["client_email"], info["private_key"], token_uri, int(now))
    body = await connector.post_json(token_uri, data={"grant_type": GRANT_TYPE, "assertion": assertion})
    token, expires_in = body.get("access_token"), body.get("expires_in", LIFETIME)
    if not isinstance(token, str) or not token:
        raise PullError(f"token endpoint {token_uri} answered without an access_token")
    _cache[key] = (token, now + max(0.0, float(expires_in) - EARLY))
    return token


def forget_tokens() -> None:
    _cache.clear()
