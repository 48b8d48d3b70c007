"""sluice tenants / sources / secrets keygen, working directly on the store."""

from __future__ import annotations

import asyncio

import orjson
from cryptography.fernet import Fernet
from typer.testing import CliRunner

from sluiceway.cli import app
from sluiceway.secrets import ENV, MASK, SecretBox, generate_key

CLEAR = "cli-secret-never-printed"


def sluice(tmp_path, *args, env=None):
    r = CliRunner().invoke(app, [*args, "--data-dir", str(tmp_path)], env=env)
    assert CLEAR not in r.output
    return r


def raw_secrets(tmp_path, name):
    from sluiceway.store import open_store

    async def go():
        st = await open_store(f"sqlite:///{tmp_path / 'sluice.db'}")
        try:
            return (await st.get_source("acme", name)).secrets
        finally:
            await st.aclose()

    return asyncio.run(go())


def test_secrets_keygen():
    r = CliRunner().invoke(app, ["secrets", "keygen"])
    assert r.exit_code == 0
    key = r.stdout.strip().splitlines()[-1]
    Fernet(key.encode())  # a valid key
    assert key != CliRunner().invoke(app, ["secrets", "keygen"]).stdout.strip().splitlines()[-1]


def test_tenants(tmp_path):
    r = sluice(tmp_path, "tenants", "create", "acme", "--name", "Acme Inc")
    assert r.exit_code == 0 and "acme" in r.output
    assert sluice(tmp_path, "tenants", "create", "globex").exit_code == 0
    r = sluice(tmp_path, "tenants", "create", "acme")
    assert r.exit_code == 1 and "already exists" in r.output
    r = sluice(tmp_path, "tenants", "create", "Not Valid")
    assert r.exit_code == 2 and "must match" in r.output
    r = sluice(tmp_path, "tenants", "list")
    assert r.exit_code == 0 and "Acme Inc" in r.output and "globex" in r.output
    rows = [orjson.loads(x) for x in sluice(tmp_path, "tenants", "list", "--json").stdout.splitlines()]
    assert [t["id"] for t in rows] == ["acme", "globex"]


def test_sources_lifecycle(tmp_path):
    key = generate_key()
    env = {ENV: key, "HOOK_SECRET": CLEAR}
    assert sluice(tmp_path, "tenants", "create", "acme").exit_code == 0
    r = sluice(tmp_path, "sources", "add", "--tenant", "acme", "--name", "hooks", "--type", "webhook",
               "--setting", "header=X-Hub-Signature", "--secret-env", "secret=HOOK_SECRET", "--interval", "2m",
               env=env)
    assert r.exit_code == 0, r.output
    assert "acme/hooks" in r.output and "every 120s" in r.output and "secret" in r.output
    stored = raw_secrets(tmp_path, "hooks")
    assert CLEAR not in stored and SecretBox(key).decrypt(stored) == {"secret": CLEAR}

    r = sluice(tmp_path, "sources", "add", "--tenant", "acme", "--name", "other", "--type", "webhook",
               "--secret", f"secret={CLEAR}", "--disabled", env=env)
    assert r.exit_code == 0, r.output

    rows = [orjson.loads(x) for x in sluice(tmp_path, "sources", "list", "--json", env=env).stdout.splitlines()]
    assert [(s["name"], s["enabled"]) for s in rows] == [("hooks", True), ("other", False)]
    assert rows[0]["secrets"] == {"secret": MASK} and rows[0]["settings"]["header"] == "X-Hub-Signature"
    r = sluice(tmp_path, "sources", "list", "--tenant", "acme", env=env)
    assert r.exit_code == 0 and "hooks" in r.output and "120s" in r.output
    assert sluice(tmp_path, "sources", "list", "--tenant", "globex", "--json").stdout == ""

    assert sluice(tmp_path, "sources", "enable", "--tenant", "acme", "other", env=env).exit_code == 0
    assert sluice(tmp_path, "sources", "disable", "--tenant", "acme", "hooks", env=env).exit_code == 0
    rows = [orjson.loads(x) for x in sluice(tmp_path, "sources", "list", "--json", env=env).stdout.splitlines()]
    assert [(s["name"], s["enabled"]) for s in rows] == [("hooks", False), ("other", True)]

    assert sluice(tmp_path, "sources", "remove", "--tenant", "acme", "other").exit_code == 0
    r = sluice(tmp_path, "sources", "remove", "--tenant", "acme", "other")
    assert r.exit_code == 1 and "no source named" in r.output
    assert sluice(tmp_path, "sources", "enable", "--tenant", "acme", "other", env=env).exit_code == 1


def test_sources_add_errors(tmp_path):
    env = {ENV: generate_key()}
    assert sluice(tmp_path, "tenants", "create", "acme").exit_code == 0
    base = ["sources", "add", "--tenant", "acme", "--name", "hooks", "--type", "webhook"]
    r = sluice(tmp_path, *base, "--secret", f"secret={CLEAR}", env={ENV: ""})
    assert r.exit_code == 1 and ENV in r.output
    r = sluice(tmp_path, *base, "--secret-env", "secret=NOT_SET_ANYWHERE", env=env)
    assert r.exit_code == 2 and "NOT_SET_ANYWHERE" in r.output
    r = sluice(tmp_path, *base, "--secret", f"secret={CLEAR}", "--setting", "colour=red", env=env)
    assert r.exit_code == 2 and "settings.colour" in r.output
    r = sluice(tmp_path, *base, "--secret", f"secret={CLEAR}", "--interval", "5s", env=env)
    assert r.exit_code == 2 and "at least 10" in r.output
    r = sluice(tmp_path, *base, "--secret", "novalue", env=env)
    assert r.exit_code == 2 and "key=value" in r.output
    r = sluice(tmp_path, "sources", "add", "--tenant", "nobody", "--name", "h", "--type", "webhook",
               "--secret", f"secret={CLEAR}", env=env)
    assert r.exit_code == 1 and "nobody" in r.output
    assert sluice(tmp_path, "sources", "list", "--json").stdout == ""
