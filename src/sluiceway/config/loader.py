"""Load a configuration: YAML → ``${VAR}`` interpolation → ``SLUICE_…`` overrides → models.

Validation errors are turned into one message per problem that names the key path
(``sinks[0].batch.max_age``) and, for unknown keys, lists the valid ones.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from sluiceway import registry
from sluiceway.config.interpolate import apply_env_overrides, interpolate, register_top_keys
from sluiceway.config.model import DEFAULT_SINKS, TOP_KEYS, Config
from sluiceway.errors import ConfigError

register_top_keys(TOP_KEYS)


def load_config(
    path: str | Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Read, interpolate, override and validate. ``overrides`` are CLI flags (dotted keys)."""
    env = os.environ if env is None else env
    tree: Any = read_yaml_file(path) if path is not None else {}
    tree = interpolate(tree, env)
    tree = apply_env_overrides(tree, env)
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        node = tree
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return validate_tree(tree)


def read_yaml_file(path: str | Path) -> dict[str, Any]:
    """A YAML file whose top level is a mapping; ConfigError naming the file otherwise."""
    import yaml  # here: HTTP workers get their configuration pickled and never load PyYAML

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read config file {p}: {e.strerror or e}") from None
    try:
        tree = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: invalid YAML: {e}") from None
    if not isinstance(tree, dict):
        raise ConfigError(f"{p}: the top level must be a mapping of keys, not {type(tree).__name__}")
    return tree


def validate_tree(tree: dict[str, Any]) -> Config:
    """Validate a whole configuration; a ``ConfigError`` lists every problem found, one per line
    (the top-level keys, then each source and each sink), not only the first."""
    tree = copy.deepcopy(tree)
    raw_sinks = tree.pop("sinks", None)
    raw_sources = tree.pop("sources", None) or []
    problems: list[str] = []
    cfg: Config | None = None
    try:
        cfg = Config.model_validate(tree)
    except ValidationError as e:
        problems.append(format_errors(e, Config, ""))
    sources = _components("source", raw_sources, problems)
    needed = {t: s.name for s in sources for t in s.needs_sinks()}
    if raw_sinks is None:
        raw_sinks = copy.deepcopy(DEFAULT_SINKS) + [{"name": t, "type": t} for t in needed]
    sinks = _components("sink", raw_sinks, problems)
    if problems or cfg is None:
        raise ConfigError("\n".join(problems))
    cfg.sources, cfg.sinks = sources, sinks
    for t, source in needed.items():
        if not any(s.type == t for s in cfg.sinks):
            raise ConfigError(f"sinks: source {source!r} needs a sink of type {t!r}; add one (e.g. "
                              f"{{name: {t}, type: {t}}})")
    allowed = set(cfg.server.streams)
    for i, src in enumerate(cfg.sources):
        missing = [s for s in src.streams() if allowed and s not in allowed]
        if missing:
            problems.append(f"sources[{i}]: writes stream {missing[0]!r}, which server.streams does not allow")
        try:
            src.check_sinks(cfg.sinks)
        except ConfigError as e:  # the source's own, more precise word on its sinks
            problems.append(str(e))
        else:
            problems += _blob_stream_problems(i, src, cfg.sinks)
    if problems:
        raise ConfigError("\n".join(problems))
    return cfg


def _blob_stream_problems(i: int, source: Any, sinks: list[Any]) -> list[str]:
    """A stream whose records carry spooled blobs must be taken by an ``attachments`` sink
    (its ``streams`` empty or naming it), or those blobs would stay in the spool for good."""
    attachments = [s for s in sinks if s.type == "attachments"]
    listed = ", ".join(f"{s.name} (streams: {', '.join(s.streams)})" if s.streams else s.name for s in attachments)
    return [f"sources[{i}]: stream {stream!r} carries blobs, but no attachments sink takes it "
            f"(attachments sinks: {listed or 'none'}); add it to one's streams"
            for stream in source.blob_streams()
            if attachments and not any(s.takes(stream) for s in attachments)]


def _components(kind: str, raw_list: Any, problems: list[str]) -> list[Any]:
    """Validate a list of sinks or sources, each by the config class its ``type`` names; the
    valid ones are returned, a message per invalid one is added to ``problems``."""
    section = f"{kind}s"
    if not isinstance(raw_list, list):
        problems.append(f"{section}: must be a list of {kind} definitions")
        return []
    out = []
    names: set[str] = set()
    for i, raw in enumerate(raw_list):
        where = f"{section}[{i}]"
        if not isinstance(raw, dict):
            problems.append(f"{where}: must be a mapping with at least 'type'")
            continue
        if "type" not in raw:
            problems.append(f"{where}.type: missing; valid types: {', '.join(sorted(registry.TABLES[kind]))}")
            continue
        try:
            cls = registry.config_class(kind, str(raw["type"]))
        except ConfigError as e:
            problems.append(f"{where}.type: {e}")
            continue
        raw = {"name": raw.get("name", raw["type"]), **raw}
        try:
            item = cls.model_validate(raw)
        except ValidationError as e:
            problems.append(format_errors(e, cls, where))
            continue
        if item.name in names:
            problems.append(f"{where}.name: duplicate {kind} name {item.name!r}")
            continue
        names.add(item.name)
        out.append(item)
    return out


def format_errors(err: ValidationError, model: type[BaseModel], prefix: str) -> str:
    lines = []
    for item in err.errors():
        loc = [str(x) for x in item["loc"]]
        key = _join(prefix, loc)
        if item["type"] == "extra_forbidden":
            valid = _valid_keys(model, loc[:-1])
            hint = f"; valid keys: {', '.join(valid)}" if valid else ""
            lines.append(f"{key}: unknown key{hint}")
        elif item["type"] == "literal_error":
            lines.append(f"{key}: {item['msg'].replace('Input should be', 'must be one of')}")
        else:
            msg = item["msg"].removeprefix("Value error, ")
            lines.append(f"{key}: {msg}")
    return "\n".join(lines)


def _join(prefix: str, loc: list[str]) -> str:
    out = prefix
    for part in loc:
        if part.isdigit():
            out += f"[{part}]"
        else:
            out = f"{out}.{part}" if out else part
    return out or "config"


def _valid_keys(model: type[BaseModel], loc: list[str]) -> list[str]:
    current: Any = model
    for part in loc:
        if part.isdigit():
            continue
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return []
        ann = field.annotation
        current = next((a for a in getattr(ann, "__args__", ()) if isinstance(a, type) and issubclass(a, BaseModel)), ann)
        if getattr(current, "__origin__", None) is list:
            current = current.__args__[0]
    fields = getattr(current, "model_fields", None)
    return sorted(fields) if fields else []


def dump_config(cfg: Config) -> dict[str, Any]:
    """The effective configuration with secrets masked (``config show``)."""
    data = cfg.model_dump(mode="json", exclude={"sinks", "sources"})
    data["sources"] = [s.model_dump(mode="json") for s in cfg.sources]
    data["sinks"] = [s.model_dump(mode="json") for s in cfg.sinks]
    return _mask_urls(data)


_URL_PASSWORD = re.compile(r"(?P<pre>[a-z][a-z0-9+.-]*://[^/:@\s]*:)(?P<pw>[^@/\s]+)(?P<at>@)", re.I)


def _mask_urls(value: Any) -> Any:
    """Hide the password of every URL-shaped string (``postgresql://u:pw@h/db``)."""
    if isinstance(value, str):
        return _URL_PASSWORD.sub(lambda m: f"{m['pre']}**********{m['at']}", value)
    if isinstance(value, dict):
        return {k: _mask_urls(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_urls(v) for v in value]
    return value
