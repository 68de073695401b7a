"""`obp secret` against a real server: set (argument or stdin), get, list, delete, errors."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from pathlib import Path

import pytest

from tests.principals import ADMIN_LOGIN, ADMIN_PASSWORD
from tests.process import OBP, ServerProcess


def config_dir(server: ServerProcess) -> Path:
    """The CLI's OBP_CONFIG_DIR for `server`: where `obp login` keeps the admin's tokens."""
    return server.log_path.parent / "obp-config"


def obp(
    *args: str,
    server: ServerProcess,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a user would, against `server`, without the developer's own OBP_*."""
    inherited = {key: value for key, value in os.environ.items() if not key.startswith("OBP_")}
    return subprocess.run(
        [str(OBP), *args, "--url", server.url],
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**inherited, "OBP_CONFIG_DIR": str(config_dir(server)), **(env or {})},
    )


@pytest.fixture(scope="module", autouse=True)
def _logged_in(server: ServerProcess) -> None:
    """`obp login` as the global admin, once per server."""
    login = obp(
        "login", "--username", ADMIN_LOGIN, "--password-stdin",
        server=server, stdin=ADMIN_PASSWORD + "\n",
    )  # fmt: skip
    assert login.returncode == 0, login.stderr
    assert ADMIN_PASSWORD not in login.stdout + login.stderr


def _namespace(server: ServerProcess) -> str:
    name = f"cli-{secrets.token_hex(4)}"
    with server.client() as sdk:
        sdk.namespaces.create(name)
    return name


def _one_error_line(result: subprocess.CompletedProcess[str], starts: str) -> str:
    assert result.returncode == 1, result
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(starts), lines[0]
    return lines[0]


def test_set_get_list_and_delete_a_secret_through_the_cli(server: ServerProcess) -> None:
    ns = _namespace(server)
    first = obp("secret", "set", "db.password", "cli-value-1", "-n", ns, server=server)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "stored secret db.password version 1"
    second = obp(
        "secret", "set", "db.password", "cli-value-2", "-n", ns, "--description", "main db",
        server=server,
    )  # fmt: skip
    assert second.stdout.strip() == "stored secret db.password version 2"
    assert "cli-value" not in first.stdout + second.stdout

    assert obp("secret", "get", "db.password", "-n", ns, server=server).stdout == "cli-value-2\n"
    older = obp("secret", "get", "db.password", "-n", ns, "--version", "1", server=server)
    assert older.stdout == "cli-value-1\n"

    obp("secret", "set", "api-key", "cli-value-3", "--namespace", ns, server=server)
    listed = obp("secret", "list", "-n", ns, server=server)
    assert listed.returncode == 0, listed.stderr
    assert "cli-value" not in listed.stdout
    rows = [line.split() for line in listed.stdout.strip().splitlines()]
    assert rows == [["api-key", "v1"], ["db.password", "v2", "main", "db"]]
    only_db = obp("secret", "list", "-n", ns, "--prefix", "db.", server=server)
    assert [line.split()[0] for line in only_db.stdout.strip().splitlines()] == ["db.password"]

    deleted = obp("secret", "delete", "db.password", "-n", ns, server=server)
    assert deleted.returncode == 0, deleted.stderr
    assert deleted.stdout.strip() == "deleted secret db.password"
    again = obp("secret", "delete", "db.password", "-n", ns, server=server)
    assert again.returncode == 0, again.stderr
    _one_error_line(obp("secret", "get", "db.password", "-n", ns, server=server), "error: 404")


def test_set_reads_the_value_from_stdin_when_it_is_not_an_argument(server: ServerProcess) -> None:
    ns = _namespace(server)
    stored = obp("secret", "set", "piped", "-n", ns, server=server, stdin="from-stdin\n")
    assert stored.returncode == 0, stored.stderr
    assert stored.stdout.strip() == "stored secret piped version 1"
    assert "from-stdin" not in stored.stdout + stored.stderr
    assert obp("secret", "get", "piped", "-n", ns, server=server).stdout == "from-stdin\n"
    with server.client() as sdk:
        assert sdk.secrets.get(ns, "piped")["value"] == "from-stdin"  # one newline stripped

    certificate = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    obp("secret", "set", "cert", "-n", ns, server=server, stdin=certificate)
    with server.client() as sdk:
        assert sdk.secrets.get(ns, "cert")["value"] == certificate.removesuffix("\n")


def test_json_output_is_for_scripts_and_list_never_carries_values(server: ServerProcess) -> None:
    ns = _namespace(server)
    stored = json.loads(
        obp("secret", "set", "token", "json-value", "-n", ns, "--json", server=server).stdout
    )
    assert stored["name"] == "token"
    assert stored["version"] == 1
    assert "value" not in stored
    found = json.loads(obp("secret", "get", "token", "-n", ns, "--json", server=server).stdout)
    assert found["value"] == "json-value"
    assert found["version"] == 1
    listed = obp("secret", "list", "-n", ns, "--json", server=server)
    assert "json-value" not in listed.stdout
    items = json.loads(listed.stdout)
    assert [item["name"] for item in items] == ["token"]
    assert all("value" not in item for item in items)
    deleted = obp("secret", "delete", "token", "-n", ns, "--json", server=server)
    assert json.loads(deleted.stdout) == {"deleted": "token"}
    assert json.loads(obp("secret", "list", "-n", ns, "--json", server=server).stdout) == []
    assert obp("secret", "list", "-n", ns, server=server).stdout.strip() == "no secrets"


def test_the_namespace_can_come_from_obp_namespace(server: ServerProcess) -> None:
    ns = _namespace(server)
    env = {"OBP_NAMESPACE": ns}
    assert obp("secret", "set", "from-env", "v", server=server, env=env).returncode == 0
    assert obp("secret", "get", "from-env", server=server, env=env).stdout == "v\n"


def test_errors_exit_1_with_one_line_and_never_echo_the_value(
    server: ServerProcess, tmp_path: Path
) -> None:
    ns = _namespace(server)
    logged_out = {"OBP_CONFIG_DIR": str(tmp_path / "nobody")}
    anonymous = obp("secret", "set", "fine", "error-value", "-n", ns, server=server, env=logged_out)
    assert "error-value" not in _one_error_line(anonymous, "error: 401")
    assert obp("secret", "list", "-n", ns, server=server).stdout.strip() == "no secrets"
    invalid = obp("secret", "set", "bad name", "error-value", "-n", ns, server=server)
    line = _one_error_line(invalid, "error: 422 Invalid input: name:")
    assert "error-value" not in line

    missing_ns = f"missing-{secrets.token_hex(4)}"
    unknown = obp("secret", "set", "fine", "error-value", "-n", missing_ns, server=server)
    assert "error-value" not in _one_error_line(unknown, "error: 404")
    _one_error_line(obp("secret", "list", "-n", missing_ns, server=server), "error: 404")
    _one_error_line(obp("secret", "get", "nothing-here", "-n", ns, server=server), "error: 404")
    too_big = obp("secret", "set", "big", "-n", ns, server=server, stdin="x" * (64 * 1024 + 1))
    assert "value" in _one_error_line(too_big, "error: 422")

    unreachable = subprocess.run(
        [str(OBP), "secret", "get", "x", "-n", ns, "--url", "http://127.0.0.1:9"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "OBP_CONFIG_DIR": str(config_dir(server))},
    )
    _one_error_line(unreachable, "error: cannot reach http://127.0.0.1:9")
