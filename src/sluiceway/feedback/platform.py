"""What the platform connectors under ``sources/`` share on top of ``pull.Connector``.

- settings and secrets may be given as their models or as plain dicts (a stored row);
- ``get_json``/``post_json``: a response body that is not a JSON object fails the run
  (``PullError``), it never crashes the scheduler nor turns into invented items;
- ``now()``: the connector's clock (UTC), replaceable in tests;
- ``rate_limit_wait``: a platform that sends a reset time on 429 names its header in
  ``reset_header`` (unix seconds, e.g. ``x-rate-limit-reset``); else ``Retry-After``;
- ``parse_iso``: ISO 8601 / RFC 3339 strings ("…Z", any fraction) → tz-aware UTC;
- ``BaseUrl``: a settings field for an API root (http(s), no trailing slash), overridable
  for self-hosted servers and tests;
- ``map_items``: platform objects → items; one that cannot be read is logged and skipped (a bad
  object must not stop every later run at the same place).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, SecretStr

from sluiceway.feedback.item import FeedbackItem
from sluiceway.feedback.pull import Connector, PullError, reset_in, retry_after_seconds
from sluiceway.record import UTC
from sluiceway.telemetry.logging import get_logger

if TYPE_CHECKING:
    import httpx

log = get_logger("sluiceway.pull")


def _base_url(value: str) -> str:
    value = value.strip().rstrip("/")
    if not value.startswith(("http://", "https://")) or len(value) <= len("https://"):
        raise ValueError(f"{value!r} is not an http(s) URL")
    return value


BaseUrl = Annotated[str, AfterValidator(_base_url)]


def parse_iso(value: str | None) -> datetime | None:
    if not value:
        return None
    t = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).astimezone(UTC)


def secret(value: SecretStr | str | None) -> str | None:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise PullError(f"{response.request.method} {response.request.url} → {response.status_code}: "
                        f"expected a JSON object, got {response.text[:200]!r}")
    return body


def map_items(objects: Any, to_item: Callable[..., FeedbackItem | None], *args: Any) -> list[FeedbackItem]:
    """``to_item(obj, *args)`` for each object; ``ValueError``/``TypeError``/``KeyError`` → warning, skipped."""
    items = []
    for obj in objects if isinstance(objects, Iterable) and not isinstance(objects, (str, bytes, dict)) else []:
        try:
            item = to_item(obj, *args)
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            log.warning("feedback object skipped", reason=f"{type(e).__name__}: {e}",
                        object_id=str(obj.get("id") if isinstance(obj, dict) else obj)[:80])
            continue
        if item is not None:
            items.append(item)
    return items


def _model(model: type[BaseModel], value: Any) -> Any:
    return value if isinstance(value, model) else model.model_validate(value or {})


class PlatformConnector(Connector):
    reset_header: ClassVar[str | None] = None

    def __init__(self, settings: Any, secrets: Any, http: Any):
        super().__init__(_model(self.Settings, settings), _model(self.Secrets, secrets), http)

    def now(self) -> datetime:
        return datetime.now(UTC)

    def rate_limit_wait(self, response: httpx.Response) -> float | None:
        if self.reset_header:
            wait = reset_in(response.headers.get(self.reset_header), self.now().timestamp())
            if wait is not None:
                return wait
        return retry_after_seconds(response.headers.get("retry-after"))

    async def get_json(self, url: str, **kwargs: Any) -> dict[str, Any]:
        return json_object(await self.get(url, **kwargs))

    async def post_json(self, url: str, **kwargs: Any) -> dict[str, Any]:
        return json_object(await self.post(url, **kwargs))
