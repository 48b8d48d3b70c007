from pathlib import Path

import pytest

from sluiceway.config import load_config
from sluiceway.config.types import parse_duration, parse_size
from sluiceway.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "sluice.yaml"
    p.write_text(text)
    return p


def test_defaults_without_file():
    cfg = load_config(None, env={})
    assert cfg.server.host == "127.0.0.1" and cfg.server.port == 8080
    assert cfg.data_dir == Path("sluice-data")
    assert [s.type for s in cfg.sinks] == ["object_store", "sql"]
    assert cfg.store_url.startswith("sqlite:///")


def test_interpolation_with_defaults(tmp_path):
    p = write(tmp_path, "server:\n  port: ${PORT}\n  host: ${HOST:-0.0.0.0}\ndata_dir: ${D:-/tmp/x}\n")
    cfg = load_config(p, env={"PORT": "9001"})
    assert cfg.server.port == 9001 and cfg.server.host == "0.0.0.0" and cfg.data_dir == Path("/tmp/x")


def test_empty_variable_takes_default(tmp_path):
    p = write(tmp_path, "server:\n  host: ${HOST:-1.2.3.4}\n")
    assert load_config(p, env={"HOST": ""}).server.host == "1.2.3.4"


def test_missing_variable_names_key_and_variable(tmp_path):
    p = write(tmp_path, "store:\n  url: ${DATABASE_URL}\n")
    with pytest.raises(ConfigError) as e:
        load_config(p, env={})
    assert "store.url" in str(e.value) and "DATABASE_URL" in str(e.value)


def test_dollar_escape(tmp_path):
    p = write(tmp_path, "store:\n  url: 'a$${b}'\n")
    assert load_config(p, env={}).store.url == "a${b}"


def test_unknown_key_lists_valid_keys(tmp_path):
    p = write(tmp_path, "server:\n  prot: 1\n")
    with pytest.raises(ConfigError) as e:
        load_config(p, env={})
    msg = str(e.value)
    assert "server.prot" in msg and "unknown key" in msg and "port" in msg and "workers" in msg


def test_unknown_top_level_key(tmp_path):
    p = write(tmp_path, "sevrer: {}\n")
    with pytest.raises(ConfigError) as e:
        load_config(p, env={})
    assert "sevrer" in str(e.value) and "server" in str(e.value)


def test_unknown_sink_type_lists_valid(tmp_path):
    p = write(tmp_path, "sinks:\n  - type: kafka\n")
    with pytest.raises(ConfigError) as e:
        load_config(p, env={})
    assert "sinks[0].type" in str(e.value) and "object_store" in str(e.value) and "sql" in str(e.value)


def test_bad_nested_sink_key(tmp_path):
    p = write(tmp_path, "sinks:\n  - type: sql\n    batch:\n      max_agee: 1s\n")
    with pytest.raises(ConfigError) as e:
        load_config(p, env={})
    assert "sinks[0].batch.max_agee" in str(e.value) and "max_age" in str(e.value)


def test_literal_error_lists_values(tmp_path):
    p = write(tmp_path, "log:\n  level: loud\n")
    with pytest.raises(ConfigError) as e:
        load_config(p, env={})
    assert "log.level" in str(e.value) and "debug" in str(e.value)


def test_every_problem_is_reported_at_once(tmp_path):
    p = write(tmp_path, "server:\n  prot: 1\nsources:\n  - type: nope\n"
                        "sinks:\n  - {type: object_stor, name: o}\n  - {type: sql, batch: {max_agee: 1s}}\n")
    with pytest.raises(ConfigError) as e:
        load_config(p, env={})
    lines = str(e.value).splitlines()
    for key in ("server.prot", "sources[0].type", "sinks[0].type", "sinks[1].batch.max_agee"):
        assert any(line.startswith(key + ":") for line in lines), (key, lines)


def test_duplicate_sink_names(tmp_path):
    p = write(tmp_path, "sinks:\n  - {type: sql, name: a}\n  - {type: sql, name: a}\n")
    with pytest.raises(ConfigError, match="duplicate"):
        load_config(p, env={})


def test_env_overrides(tmp_path):
    p = write(tmp_path, "server:\n  port: 1\nsinks:\n  - {type: sql, name: db}\n")
    cfg = load_config(p, env={"SLUICE_SERVER__PORT": "7000", "SLUICE_SERVER__STREAMS": "[a, b]",
                               "SLUICE_SINKS__0__BATCH__MAX_RECORDS": "5", "SLUICE_TEST_PG_URL": "x",
                               "SLUICE_DATA_DIR": "/tmp/dd"})
    assert cfg.server.port == 7000 and cfg.server.streams == ["a", "b"]
    assert cfg.sinks[0].batch.max_records == 5 and cfg.data_dir == Path("/tmp/dd")


def test_cli_overrides_win(tmp_path):
    p = write(tmp_path, "server:\n  port: 1\n")
    cfg = load_config(p, env={}, overrides={"server.port": 5, "data_dir": None})
    assert cfg.server.port == 5


def test_invalid_yaml(tmp_path):
    p = write(tmp_path, "server: [\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(p, env={})


def test_stream_names_validated(tmp_path):
    p = write(tmp_path, "server:\n  streams: [Bad/Name]\n")
    with pytest.raises(ConfigError, match="server.streams"):
        load_config(p, env={})


@pytest.mark.parametrize("text,value", [("10MiB", 10 * 1024 * 1024), ("512kb", 512_000), (42, 42), ("1GiB", 1 << 30)])
def test_parse_size(text, value):
    assert parse_size(text) == value


def test_journal_max_bytes_auto_is_a_share_of_free_space(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    from sluiceway.config.model import AUTO_MIN

    usage = namedtuple("usage", "total used free")
    seen = []

    def disk_usage(path):
        seen.append(Path(path))
        return usage(100 << 30, 20 << 30, 80 << 30)

    monkeypatch.setattr(shutil, "disk_usage", disk_usage)
    cfg = load_config(None, env={}, overrides={"data_dir": str(tmp_path / "new" / "data")})
    assert cfg.journal.max_bytes == "auto"
    assert cfg.journal_max_bytes() == 20 << 30  # a quarter of the free 80 GiB, one worker
    assert seen[-1] == tmp_path  # measured where the journal will be: the nearest existing folder
    two = cfg.model_copy(update={"server": cfg.server.model_copy(update={"workers": 2})})
    assert two.journal_max_bytes() == 10 << 30  # shared by the writing partitions
    fixed = cfg.resolve_journal()
    assert fixed.journal.max_bytes == 20 << 30 and cfg.journal.max_bytes == "auto"
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(1 << 30, 1 << 30, 1 << 20))
    assert cfg.journal_max_bytes() == AUTO_MIN  # a nearly full disk: the floor
    assert fixed.journal_max_bytes() == 20 << 30  # a fixed size is not measured again


@pytest.mark.parametrize("value,expected", [("2GiB", 2 << 30), ("AUTO", "auto"), (4096, 4096)])
def test_journal_max_bytes_sizes(tmp_path, value, expected):
    p = write(tmp_path, f"journal:\n  max_bytes: {value}\n")
    assert load_config(p, env={}).journal.max_bytes == expected


@pytest.mark.parametrize("value", ["lots", "0", "-1GiB"])
def test_journal_max_bytes_rejects(tmp_path, value):
    p = write(tmp_path, f"journal:\n  max_bytes: {value}\n")
    with pytest.raises(ConfigError, match="journal.max_bytes"):
        load_config(p, env={})


@pytest.mark.parametrize("text,value", [("250ms", 0.25), ("2s", 2), ("1m30s", 90), ("1h", 3600), (5, 5.0), ("7d", 604800)])
def test_parse_duration(text, value):
    assert parse_duration(text) == value


@pytest.mark.parametrize("bad", ["ten", "5 parsecs", True])
def test_parse_duration_rejects(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_examples_validate():
    root = Path(__file__).resolve().parents[2] / "examples"
    env = {"DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/test", "S3_ENDPOINT": "http://127.0.0.1:8333",
           "S3_BUCKET": "events", "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s", "LOGS_BUCKET": "logs"}
    files = sorted(f for f in root.glob("*.yaml") if f.name != "export.yaml")  # export.yaml: sluice ship's format
    assert files
    for f in files:
        load_config(f, env=env)


def test_dump_masks_passwords_and_secrets(tmp_path):
    from sluiceway.config import dump_config

    p = write(tmp_path, "store:\n  url: postgresql://u:hunter2@db:5432/x\n"
                        "sinks:\n  - type: object_store\n    s3: {bucket: bkt, access_key_id: AK, secret_access_key: SECRET}\n")
    text = str(dump_config(load_config(p, env={})))
    assert "hunter2" not in text and "SECRET" not in text and "postgresql://u:**********@db:5432/x" in text


def test_archive_format_is_checked_and_names_the_key(tmp_path):
    cfg = load_config(write(tmp_path, "archive:\n  format: parquet\n  jobs: [{table: logs, older_than: 30d}]\n"))
    assert cfg.archive.format == "parquet" and cfg.archive.jobs[0].format is None
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, "archive:\n  jobs: [{table: logs, older_than: 30d, format: csv}]\n"))
    assert "archive.jobs[0].format" in str(e.value) and "parquet" in str(e.value)


def test_a_stream_that_carries_blobs_needs_an_attachments_sink_that_takes_it():
    from sluiceway.config.loader import validate_tree

    sources = [{"type": "lightfile6"}]
    with pytest.raises(ConfigError) as e:
        validate_tree({"sources": sources, "sinks": [
            {"name": "files", "type": "attachments", "streams": ["usage"]}, {"name": "db", "type": "sql"}]})
    assert "sources[0]: stream 'specimen' carries blobs, but no attachments sink takes it" in str(e.value)
    assert "files (streams: usage)" in str(e.value)
    for streams in ([], ["specimen"]):  # every stream, or this one
        validate_tree({"sources": sources, "sinks": [{"name": "files", "type": "attachments", "streams": streams}]})
    validate_tree({"sources": sources})  # the defaults gain an attachments sink for every stream
