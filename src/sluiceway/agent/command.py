"""The body of ``sluice ship``: load the config, then print it or run the loop; return the exit code."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from sluiceway.errors import ConfigError


def ship(config: Path | None, overrides: dict[str, Any], *, print_config: bool = False) -> int:
    """Exit codes: 0 success (or config printed), 1 failed collection, 2 invalid configuration."""
    from rich.console import Console

    from sluiceway.agent.config import load_ship_config

    try:
        cfg = load_ship_config(config, overrides=overrides)
    except ConfigError as e:
        err = Console(stderr=True)
        err.print("[red]configuration error[/red]")
        err.print(str(e), markup=False, highlight=False, soft_wrap=True)
        return 2
    if print_config:
        print(json.dumps(cfg.public(), indent=2, sort_keys=True))
        return 0

    from sluiceway.agent.display import setup
    from sluiceway.agent.runner import Shipper
    from sluiceway.telemetry.logging import get_logger

    display = setup(cfg.log_level, sys.stderr)
    get_logger("sluiceway.agent").info(
        "sluice ship starting", data_dir=str(cfg.data_dir), url=cfg.ingress_server_url, service_id=cfg.service_id,
        identity_id=cfg.identity_id, collection_interval=cfg.collection_interval)
    return Shipper(cfg, display=display).run()


def split_list(values: list[str] | None) -> list[str] | None:
    """``--allowed-subdirs a,b --allowed-subdirs c`` → [a, b, c]; None when the flag is absent."""
    if values is None:
        return None
    return [v.strip() for item in values for v in item.split(",") if v.strip()]
