"""The ldo source's configuration, its attachments sink, names, and the shipped example."""

from __future__ import annotations

import pickle
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

from sluiceway.config import load_config
from sluiceway.config.types import SinkConfigBase
from sluiceway.errors import ConfigError
from sluiceway.sources.ldo.config import LdoSourceConfig, resolve_files_sink
from sluiceway.sources.ldo.names import content_disposition, new_id, object_name, safe_filename, spool_suffix
from tests.helpers import make_config

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "ldo.yaml"


def test_example_validates_and_names_its_files_sink():
    cfg = load_config(EXAMPLE, env={})
    (src,) = cfg.sources
    assert src.type == "ldo" and src.stream == "ldo" and src.max_file_bytes == 5 * 1024**3
    sink = resolve_files_sink(src, cfg.sinks)
    assert sink.name == "ldo-files" and sink.key_template == "{name}"


def test_defaults_gain_an_attachments_sink(tmp_path):
    cfg = make_config(tmp_path, sources=[{"type": "ldo"}])
    assert "attachments" in {s.type for s in cfg.sinks}
    assert resolve_files_sink(cfg.sources[0], cfg.sinks).name == "attachments"


def test_an_explicit_sink_list_needs_an_attachments_sink(tmp_path):
    with pytest.raises(ConfigError, match="needs a sink of type 'attachments'"):
        make_config(tmp_path, sources=[{"type": "ldo"}], sinks=[{"name": "sql", "type": "sql"}])


@pytest.mark.parametrize("files_from,sinks,message", [
    (None, [{"name": "a", "type": "attachments"}, {"name": "b", "type": "attachments"}], "several attachments sinks"),
    ("c", [{"name": "a", "type": "attachments"}], "no attachments sink named 'c'"),
    (None, [{"name": "a", "type": "attachments", "streams": ["other"]}], "does not take stream 'ldo'"),
])
def test_the_files_sink_must_be_clear(tmp_path, files_from, sinks, message):
    """Checked when the configuration is validated (``sluice validate``), not only at start-up."""
    with pytest.raises(ConfigError, match=message) as e:
        make_config(tmp_path, sources=[{"type": "ldo", "files_from": files_from}], sinks=sinks)
    assert str(e.value).startswith("sources.ldo")


def test_workers_get_the_sink_settings_with_the_source_config(tmp_path):
    """sluice serve's workers see sinks as names and types only (runtime/worker.py)."""
    cfg = make_config(tmp_path, sources=[{"type": "ldo"}],
                      sinks=[{"name": "a", "type": "attachments", "key_template": "x/{name}"}])
    resolve_files_sink(cfg.sources[0], cfg.sinks)  # as the supervisor's Gateway does before spawning
    reduced = [SinkConfigBase(name=s.name, type=s.type) for s in cfg.sinks]
    src = pickle.loads(pickle.dumps(cfg.model_copy(update={"sinks": reduced}))).sources[0]
    assert resolve_files_sink(src, reduced).key_template == "x/{name}"
    fresh = LdoSourceConfig.model_validate({"name": "ldo", "type": "ldo"})  # never saw the full sinks
    with pytest.raises(ConfigError, match="not available"):
        resolve_files_sink(fresh, reduced)


@pytest.mark.parametrize("bad", ["data", "/a//b", "/{x}"])
def test_path_prefix_is_checked(tmp_path, bad):
    with pytest.raises(ConfigError, match="path_prefix"):
        make_config(tmp_path, sources=[{"type": "ldo", "path_prefix": bad}])


def test_names():
    t = datetime(2024, 1, 16, 16, 0, tzinfo=timezone.utc)
    key = "01a20936de5d70faab5975389103a62b"
    lid = new_id(t, key)
    assert lid == "ldo_75389103a62b_1705420800" and spool_suffix(lid) == "75389103a62b"
    assert re.fullmatch(r"ldo_[0-9a-f]{12}_1705420800", new_id(t, None))
    assert safe_filename("../../etc/pass wd.mp4") == "pass_wd.mp4"
    assert safe_filename(".hidden") == "hidden" and safe_filename(None) == "file" and safe_filename("..") == "file"
    assert safe_filename("C:\\clips\\a.MP4") == "a.MP4"
    assert len(safe_filename("x" * 300 + ".mp4")) == 104
    assert object_name("org1", t, lid, "clip 1.mp4") == f"ldo/org1/2024/01/16/{lid}/clip_1.mp4"
    assert content_disposition("clip.mp4") == 'inline; filename="clip.mp4"'
    assert content_disposition("é.mp4") == "inline; filename=\"_.mp4\"; filename*=UTF-8''%C3%A9.mp4"
