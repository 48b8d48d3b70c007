"""The original configuration file format, its defaults, validation and env overrides."""

from pathlib import Path

import pytest

from sluiceway.errors import ConfigError
from sluiceway.sources.lightfile6.compat import DEFAULT_CACHE_DIR, load_file, load_lightfile6

BUCKETS = "s3:\n  usage_bucket: test-usage\n  error_bucket: test-error\n  specimen_bucket: test-specimen\n"
EXAMPLE = Path(__file__).parents[3] / "examples" / "lightfile6.yml"


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "config.yml"
    p.write_text(text)
    return p


def test_defaults(tmp_path):
    f = load_file(write(tmp_path, BUCKETS), {})
    assert f.cache_dir == DEFAULT_CACHE_DIR
    assert f.aws.region == "ap-northeast-1"
    assert f.aggregation.usage_interval == 600 and f.aggregation.error_interval == 600


def test_custom_values_kept_and_5m_usage_leaves_error_at_10m(tmp_path):
    f = load_file(write(tmp_path, BUCKETS + "cache_dir: /tmp/c\naws:\n  region: us-east-1\n"
                                            "aggregation:\n  usage_interval: 5m\n"), {})
    assert str(f.cache_dir) == "/tmp/c" and f.aws.region == "us-east-1"
    assert f.aggregation.usage_interval == 300 and f.aggregation.error_interval == 600


def test_zero_interval_means_default_and_negative_is_an_error(tmp_path):
    f = load_file(write(tmp_path, BUCKETS + "aggregation:\n  usage_interval: 0\n"), {})
    assert f.aggregation.usage_interval == 600
    with pytest.raises(ConfigError, match=r"aggregation.error_interval: must not be negative"):
        load_file(write(tmp_path, BUCKETS + "aggregation:\n  error_interval: -1\n"), {})
    with pytest.raises(ConfigError, match=r"aggregation.usage_interval: .*not a duration"):
        load_file(write(tmp_path, BUCKETS + "aggregation:\n  usage_interval: soon\n"), {})


def test_all_three_buckets_ok_and_each_missing_one_named(tmp_path):
    load_file(write(tmp_path, BUCKETS), {})
    for kind in ("usage", "error", "specimen"):
        text = "\n".join(line for line in BUCKETS.splitlines() if not line.strip().startswith(kind))
        with pytest.raises(ConfigError, match=rf"s3.{kind}_bucket: {kind} bucket is required"):
            load_file(write(tmp_path, text), {})


def test_unknown_key_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"aws.regoin: unknown key; valid keys: access_key_id, endpoint"):
        load_file(write(tmp_path, BUCKETS + "aws:\n  regoin: x\n"), {})


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_file(tmp_path / "nope.yml", {})


def test_env_overrides_apply_even_to_keys_missing_from_the_file(tmp_path):
    p = write(tmp_path, "s3:\n  usage_bucket: from-file\n")
    env = {"LIGHTFILE6_S3_USAGE_BUCKET": "from-env", "LIGHTFILE6_S3_ERROR_BUCKET": "errs",
           "LIGHTFILE6_S3_SPECIMEN_BUCKET": "specs", "LIGHTFILE6_AGGREGATION_USAGE_INTERVAL": "2s",
           "LIGHTFILE6_CACHE_DIR": str(tmp_path / "cache"), "LIGHTFILE6_AWS_REGION": "eu-west-1"}
    f = load_file(p, env)
    assert (f.s3.usage_bucket, f.s3.error_bucket, f.s3.specimen_bucket) == ("from-env", "errs", "specs")
    assert f.aggregation.usage_interval == 2 and f.aws.region == "eu-west-1"


def test_to_config_maps_buckets_prefixes_and_intervals(tmp_path):
    text = (BUCKETS + f"cache_dir: {tmp_path / 'cache'}\n"
            "aws:\n  endpoint: http://127.0.0.1:9000\n  access_key_id: k\n  secret_access_key: s\n"
            "  region: us-east-1\n")
    text = text.replace("s3:\n", "s3:\n  usage_prefix: usage/\n  specimen_prefix: spec/\n")
    cfg = load_lightfile6(write(tmp_path, text + "aggregation:\n  error_interval: 2s\n"), {}, port=8888)
    assert cfg.server.port == 8888 and cfg.server.host == "0.0.0.0"
    assert cfg.data_dir == tmp_path / "cache"
    usage, error, spec = cfg.sinks
    assert usage.s3.bucket == "test-usage" and usage.s3.prefix == "usage" and usage.s3.use_path_style
    assert usage.batch.max_age == 600 and error.batch.max_age == 2
    assert usage.streams == ["usage"] and usage.format == "payload" and usage.content_encoding == "none"
    assert error.s3.prefix == "" and spec.type == "attachments" and spec.s3.prefix == "spec"
    assert spec.key_template == "{name}"
    assert cfg.sources[0].type == "lightfile6"


def test_static_keys_only_when_both_are_set(tmp_path):
    cfg = load_lightfile6(write(tmp_path, BUCKETS + "aws:\n  access_key_id: only-id\n"), {}, port=1)
    assert cfg.sinks[0].s3.access_key_id is None


def test_shipped_example_runs_with_just_its_variables(tmp_path):
    env = {"S3_ENDPOINT": "http://127.0.0.1:8333", "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s",
           "CACHE_DIR": str(tmp_path / "cache")}
    cfg = load_lightfile6(EXAMPLE, env, port=8080)
    assert [s.s3.bucket for s in cfg.sinks] == ["lightfile6-usage", "lightfile6-error", "lightfile6-specimen"]
    assert cfg.sinks[0].s3.endpoint == "http://127.0.0.1:8333"
    cfg = load_lightfile6(EXAMPLE, {**env, "USAGE_BUCKET": "u-bucket"}, port=8080)
    assert cfg.sinks[0].s3.bucket == "u-bucket"
