"""``sluice ship`` end to end: flags, exit codes, and SIGTERM (as a real subprocess)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from sluiceway.cli import app
from tests.agent.conftest import write
from tests.agent.fake_ingress import Reply
from tests.agent.test_runner import eventually

SLUICE = [sys.executable, "-m", "sluiceway.cli"]


def config_file(tmp_path: Path, data_dir: Path, url: str, **extra: object) -> Path:
    keys = {"data_dir": str(data_dir), "service_id": "ols", "ingress_server_url": url,
            "ingress_server_auth_token": "${INGRESS_SERVER_AUTH_TOKEN}", "identity_id": "test-instance",
            "settle_time": 0, "retry_initial": 0.01, "retry_interval": 0.05, **extra}
    p = tmp_path / "export.yaml"
    p.write_text("".join(f"{k}: {json.dumps(v)}\n" for k, v in keys.items()))
    return p


def env(**extra: str) -> dict[str, str]:
    return {**os.environ, "INGRESS_SERVER_AUTH_TOKEN": "sekret", **extra}


def test_print_config_masks_token_and_applies_flags(tmp_path, data_dir):
    cfg = config_file(tmp_path, data_dir, "http://127.0.0.1:9/up")
    res = CliRunner().invoke(app, ["ship", "--config", str(cfg), "--token", "cli-secret", "--no-cleanup",
                                   "--collection-interval", "1h", "--allowed-subdirs", "feedback,transcripts",
                                   "--identity-id", "c-1", "--print-config-and-exit"], env={})
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["ingress_server_auth_token"] == "**********" and "cli-secret" not in res.output
    assert (out["cleanup_after_send"], out["collection_interval"], out["identity_id"]) == (False, 3600, "c-1")
    assert out["allowed_subdirs"] == ["feedback", "transcripts"]


def test_invalid_config_exits_2_naming_the_key(tmp_path, data_dir):
    cfg = config_file(tmp_path, data_dir, "http://127.0.0.1:9/up", colection_interval=5)
    res = CliRunner().invoke(app, ["ship", "--config", str(cfg)], env={"INGRESS_SERVER_AUTH_TOKEN": "t"})
    assert res.exit_code == 2
    assert "colection_interval: unknown key" in res.output


def test_once_mode_exit_codes(tmp_path, data_dir, ingress):
    write(data_dir / "a.json")
    cfg = config_file(tmp_path, data_dir, ingress.url, collection_interval=0)
    ingress.script.append(Reply(500))
    failed = subprocess.run([*SLUICE, "ship", "--config", str(cfg)], env=env(), capture_output=True, timeout=60)
    assert failed.returncode == 1, failed.stderr
    assert (data_dir / "a.json").exists()
    ok = subprocess.run([*SLUICE, "ship", "--config", str(cfg), "--log-level", "DEBUG"], env=env(),
                        capture_output=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert b"req-1" in ok.stderr and b"sekret" not in ok.stderr + ok.stdout
    assert not (data_dir / "a.json").exists()


def run_until_sigterm(tmp_path: Path, data_dir: Path, ingress) -> subprocess.Popen[bytes]:
    write(data_dir / "first.json")
    cfg = config_file(tmp_path, data_dir, ingress.url, collection_interval=3600)
    proc = subprocess.Popen([*SLUICE, "ship", "--config", str(cfg)], env=env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    eventually(lambda: not (data_dir / "first.json").exists() or proc.poll() is not None, timeout=60)
    assert proc.poll() is None, proc.communicate()
    write(data_dir / "feedback" / "last.json")
    return proc


def test_sigterm_runs_a_final_collection(tmp_path, data_dir, ingress):
    proc = run_until_sigterm(tmp_path, data_dir, ingress)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert [set(u.members()) for u in ingress.uploads] == [{"first.json"}, {"feedback/last.json"}]
    assert list(data_dir.iterdir()) == []


def test_sigterm_with_failing_final_collection_exits_1(tmp_path, data_dir, ingress):
    proc = run_until_sigterm(tmp_path, data_dir, ingress)
    ingress.script.append(Reply(500))
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    assert (data_dir / "feedback" / "last.json").exists()
