"""examples/logs.yaml validates with its variables set, and names what it needs."""

from pathlib import Path

from sluiceway.config import load_config

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "logs.yaml"


def test_example_validates(monkeypatch):
    for k, v in {"LOGS_BUCKET": "app-logs", "S3_ENDPOINT": "http://127.0.0.1:8333", "AWS_ACCESS_KEY_ID": "ak",
                 "AWS_SECRET_ACCESS_KEY": "sk", "LOGS_PREFIX": "2025/04"}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("SCAN_INTERVAL", raising=False)
    cfg = load_config(EXAMPLE)
    src, ldo = cfg.sources
    assert (src.type, src.s3.bucket, src.s3.prefix, src.s3.endpoint) == (
        "bucket", "app-logs", "2025/04", "http://127.0.0.1:8333")
    assert src.scan_interval == 30 and src.location == "s3://app-logs/2025/04"
    assert src.s3.secret_access_key.get_secret_value() == "sk" and "sk" not in repr(src)
    assert ldo.type == "ldo"
    assert [s.type for s in cfg.sinks] == ["logs", "sql", "attachments"]
