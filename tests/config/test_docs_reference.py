"""Every configuration key is documented: a key added to a config model without a word in the
docs fails here, naming the key and the model it belongs to.

A key counts as documented when its name appears in docs/*.md or README.md inside a code span
(`` `batch.max_age` ``) or as a YAML key in a fenced example (``    compression: auto``)."""

from __future__ import annotations

import re
import typing
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel

from sluiceway import registry
from sluiceway.config.model import Config

ROOT = Path(__file__).resolve().parents[2]
WORD = re.compile(r"[a-z_][a-z0-9_]*")


def documented_words() -> set[str]:
    words: set[str] = set()
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = page.read_text(encoding="utf-8")
        for block in re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.M | re.S):
            words.update(re.findall(r"^\s*(?:- )?([a-z_][a-z0-9_]*):", block, flags=re.M))
        text = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
        for span in re.findall(r"`([^`\n]+)`", text):
            words.update(WORD.findall(span))
    return words


def models_in(annotation: object) -> Iterator[type[BaseModel]]:
    if typing.get_origin(annotation) is not None:
        for arg in typing.get_args(annotation):
            yield from models_in(arg)
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation


def config_keys() -> list[tuple[str, str]]:
    """(dotted key path, model name) of every field of the configuration, sinks and sources
    of every registered type included."""
    out: list[tuple[str, str]] = []
    seen: set[type[BaseModel]] = set()

    def walk(model: type[BaseModel], prefix: str) -> None:
        if model in seen:
            return
        seen.add(model)
        for name, field in model.model_fields.items():
            key = field.alias or name
            out.append((prefix + key, model.__name__))
            for sub in models_in(field.annotation):
                walk(sub, f"{prefix}{key}.")

    walk(Config, "")
    for kind, table in registry.TABLES.items():
        for type_name in sorted(table):
            walk(registry.config_class(kind, type_name), f"{kind}s[type={type_name}].")
    return out


def test_every_config_key_is_documented():
    words = documented_words()
    keys = config_keys()
    assert len(keys) > 100  # the walk reached the sinks' and sources' models
    missing = [f"{path} ({model})" for path, model in keys if path.rsplit(".", 1)[-1] not in words]
    assert not missing, "configuration keys not mentioned in README.md or docs/*.md:\n" + "\n".join(missing)


def test_the_check_sees_a_missing_key():
    assert "max_body_bytes" in documented_words()
    assert "no_such_key_anywhere" not in documented_words()
