from __future__ import annotations

from pathlib import Path

import pytest

from sluiceway.agent.config import load_ship_config
from sluiceway.errors import ConfigError


def yaml_file(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "export.yaml"
    p.write_text(text)
    return p


def base_yaml(data_dir: Path, extra: str = "") -> str:
    return (f"data_dir: {data_dir}\nservice_id: ols\ningress_server_url: http://127.0.0.1:8080/api/ingress/v1/upload\n"
            "ingress_server_auth_token: from-yaml\n" + extra)


def test_defaults(tmp_path, data_dir):
    cfg = load_ship_config(yaml_file(tmp_path, base_yaml(data_dir)), env={})
    assert cfg.identity_id == "lightspeed-exporter"
    assert cfg.collection_interval == 7200
    assert cfg.cleanup_after_send is True
    assert cfg.ingress_connection_timeout == 30
    assert cfg.retry_interval == 300
    assert cfg.allowed_subdirs == []
    assert cfg.max_archive_bytes == 100 * 1024 * 1024
    assert cfg.ingress_server_auth_token.get_secret_value() == "from-yaml"


def test_interpolation_durations_and_sizes(tmp_path, data_dir):
    text = ("data_dir: ${EXPORT_DIR:-/nonexistent}\nservice_id: ols\n"
            "ingress_server_url: ${INGRESS_URL:-http://127.0.0.1:8080/up}\n"
            "ingress_server_auth_token: ${INGRESS_SERVER_AUTH_TOKEN}\n"
            "collection_interval: 2h\nretry_interval: 5m\nmax_archive_bytes: 10MiB\n"
            "allowed_subdirs: [feedback, transcripts/]\n")
    env = {"EXPORT_DIR": str(data_dir), "INGRESS_SERVER_AUTH_TOKEN": "t"}
    cfg = load_ship_config(yaml_file(tmp_path, text), env=env)
    assert cfg.data_dir == data_dir
    assert cfg.ingress_server_url == "http://127.0.0.1:8080/up"
    assert (cfg.collection_interval, cfg.retry_interval, cfg.max_archive_bytes) == (7200, 300, 10 * 1024 * 1024)
    assert cfg.allowed_subdirs == ["feedback", "transcripts"]


def test_precedence_cli_over_env_over_yaml(tmp_path, data_dir):
    path = yaml_file(tmp_path, base_yaml(data_dir, "identity_id: yaml-id\ncollection_interval: 60\n"))
    cfg = load_ship_config(path, env={"INGRESS_SERVER_AUTH_TOKEN": "from-env"})
    assert cfg.ingress_server_auth_token.get_secret_value() == "from-env"
    cfg = load_ship_config(path, env={"INGRESS_SERVER_AUTH_TOKEN": "from-env"},
                           overrides={"ingress_server_auth_token": "from-cli", "identity_id": "cli-id",
                                      "collection_interval": "0", "cleanup_after_send": False})
    assert cfg.ingress_server_auth_token.get_secret_value() == "from-cli"
    assert (cfg.identity_id, cfg.collection_interval, cfg.cleanup_after_send) == ("cli-id", 0, False)


def test_overridden_key_needs_no_variable(tmp_path, data_dir):
    path = yaml_file(tmp_path, f"data_dir: {data_dir}\nservice_id: ols\ningress_server_url: http://x/\n"
                               "ingress_server_auth_token: ${INGRESS_SERVER_AUTH_TOKEN}\n")
    with pytest.raises(ConfigError, match=r"ingress_server_auth_token: environment variable \$\{INGRESS_SERVER_AUTH"):
        load_ship_config(path, env={})
    cfg = load_ship_config(path, env={}, overrides={"ingress_server_auth_token": "cli"})
    assert cfg.ingress_server_auth_token.get_secret_value() == "cli"


def test_original_keys_accepted(tmp_path, data_dir):
    extra = "rich_logs: true\nlog_level: debug\nmode: manual\n"
    cfg = load_ship_config(yaml_file(tmp_path, base_yaml(data_dir, extra)), env={})
    assert cfg.log_level == "DEBUG"


@pytest.mark.parametrize("extra, message", [
    ("colection_interval: 5\n", r"colection_interval: unknown key; valid keys: .*collection_interval"),
    ("collection_interval: -1\n", r"collection_interval: must not be negative"),
    ("collection_interval: soon\n", r"collection_interval: 'soon' is not a duration"),
    ("retry_interval: 0\n", r"retry_interval: must be greater than 0"),
    ("cleanup_after_send: maybe\n", r"cleanup_after_send: "),
    ("allowed_subdirs: [ok, ../up]\n", r"allowed_subdirs\[1\]: '../up' must be the name of a directory"),
    ("identity_id: has space\n", r"identity_id: 'has space' must be non-empty without spaces"),
    ("mode: openshift\n", r"mode: only 'manual' is supported"),
    ("max_archive_bytes: lots\n", r"max_archive_bytes: 'lots' is not a size"),
])
def test_bad_values_name_the_key(tmp_path, data_dir, extra, message):
    with pytest.raises(ConfigError, match=message):
        load_ship_config(yaml_file(tmp_path, base_yaml(data_dir, extra)), env={})


def test_missing_and_invalid_required_keys_all_reported(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_ship_config(yaml_file(tmp_path, "service_id: OLS\ningress_server_url: ftp://x\n"), env={})
    text = str(e.value)
    assert "data_dir: required (config key, or --data-dir)" in text
    assert "ingress_server_auth_token: required (config key, or $INGRESS_SERVER_AUTH_TOKEN or --token)" in text
    assert "service_id: 'OLS' must be lowercase" in text
    assert "ingress_server_url: 'ftp://x' must be an http:// or https:// URL" in text


def test_data_dir_must_exist(tmp_path):
    with pytest.raises(ConfigError, match="data_dir: directory .*missing does not exist"):
        load_ship_config(yaml_file(tmp_path, base_yaml(tmp_path / "missing")), env={})


def test_public_masks_token(tmp_path, data_dir):
    cfg = load_ship_config(yaml_file(tmp_path, base_yaml(data_dir)), env={})
    data = cfg.public()
    assert data["ingress_server_auth_token"] == "**********"
    assert list(data) == sorted(data)
    assert "from-yaml" not in repr(cfg)


def test_shipped_example_loads(data_dir):
    example = Path(__file__).resolve().parents[2] / "examples" / "export.yaml"
    cfg = load_ship_config(example, env={"EXPORT_DIR": str(data_dir), "INGRESS_SERVER_AUTH_TOKEN": "t"})
    assert cfg.ingress_server_url == "http://127.0.0.1:8080/api/ingress/v1/upload"
    assert (cfg.service_id, cfg.collection_interval, cfg.max_archive_bytes) == ("ols", 7200, 100 * 1024 * 1024)
