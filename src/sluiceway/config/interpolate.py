"""``${VAR}`` / ``${VAR:-default}`` interpolation and ``SLUICE_…`` environment overrides."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sluiceway.errors import ConfigError

_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")
ENV_PREFIX = "SLUICE_"


def interpolate(value: Any, env: Mapping[str, str], path: str = "") -> Any:
    """Replace ``${VAR}`` and ``${VAR:-default}`` in every string of a parsed YAML tree.

    ``$$`` stands for a literal ``$``. An unset variable without a default is an error that
    names the variable and the key it was used in. Substitution happens after YAML parsing,
    so a value can never inject YAML structure.
    """
    if isinstance(value, str):
        def sub(m: re.Match[str]) -> str:
            if m.group(0) == "$$":
                return "$"
            name, default = m.group(1), m.group(2)
            got = env.get(name)
            if got is None or (got == "" and default is not None):
                if default is None:
                    raise ConfigError(f"{path or 'config'}: environment variable ${{{name}}} is not set "
                                      f"(give a default with ${{{name}:-value}})")
                return default
            return got

        return _VAR.sub(sub, value)
    if isinstance(value, dict):
        return {k: interpolate(v, env, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def apply_env_overrides(tree: dict[str, Any], env: Mapping[str, str], prefix: str = ENV_PREFIX) -> dict[str, Any]:
    """``SLUICE_SERVER__PORT=9000`` sets ``server.port``; ``__`` separates levels, numbers index lists.

    Values are parsed as YAML scalars, so ``true``, ``10``, ``[a, b]`` keep their types.
    Variables that are not config keys (``SLUICE_TEST_…`` etc.) are rejected by validation
    only if they match a top-level key; others are ignored.
    """
    for name, raw in sorted(env.items()):
        if not name.startswith(prefix) or name.startswith(prefix + "TEST_"):
            continue
        parts = [p.lower() for p in name[len(prefix):].split("__") if p]
        if not parts or parts[0] not in _TOP_KEYS:
            continue
        import yaml  # only with an override to parse: HTTP workers never load PyYAML

        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            value = raw
        node: Any = tree
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            key: Any = int(part) if part.isdigit() and isinstance(node, list) else part
            if isinstance(node, list):
                if not isinstance(key, int) or key >= len(node):
                    raise ConfigError(f"{name}: no list item {part!r} at {'.'.join(parts[:i]) or 'top level'}")
                if last:
                    node[key] = value
                else:
                    node = node[key]
                continue
            if last:
                node[key] = value
            else:
                nxt = node.get(key)
                if not isinstance(nxt, (dict, list)):
                    nxt = node[key] = {}
                node = nxt
    return tree


_TOP_KEYS: set[str] = set()  # filled by config.model to avoid an import cycle


def register_top_keys(keys: set[str]) -> None:
    _TOP_KEYS.update(keys)
