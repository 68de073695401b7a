"""`obp kv` against a real server: set (argument, file, stdin), get (stdout, file), list,
delete, conditions, errors; values as raw bytes both ways."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from pathlib import Path

import pytest

from tests.e2e.test_secret_cli import config_dir, obp
from tests.principals import ADMIN_LOGIN, ADMIN_PASSWORD
from tests.process import OBP, ServerProcess


@pytest.fixture(scope="module", autouse=True)
def _logged_in(server: ServerProcess) -> None:
    """`obp login` as the global admin, once per server."""
    login = obp(
        "login", "--username", ADMIN_LOGIN, "--password-stdin",
        server=server, stdin=ADMIN_PASSWORD + "\n",
    )  # fmt: skip
    assert login.returncode == 0, login.stderr


def obp_bytes(
    *args: str, server: ServerProcess, stdin: bytes = b""
) -> subprocess.CompletedProcess[bytes]:
    """Run the CLI with binary stdin and stdout."""
    inherited = {key: value for key, value in os.environ.items() if not key.startswith("OBP_")}
    return subprocess.run(
        [str(OBP), *args, "--url", server.url],
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
        env={**inherited, "OBP_CONFIG_DIR": str(config_dir(server))},
    )


@pytest.fixture
def ns(server: ServerProcess) -> str:
    name = f"cli-{secrets.token_hex(4)}"
    with server.client() as sdk:
        sdk.namespaces.create(name)
    return name


def _error_line(result: subprocess.CompletedProcess[str], starts: str) -> str:
    assert result.returncode == 1, result
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(starts), lines[0]
    return lines[0]


def test_set_get_list_and_delete_through_the_cli(server: ServerProcess, ns: str) -> None:
    stored = obp("kv", "set", "orders/42", "pending", "-n", ns, server=server)
    assert stored.returncode == 0, stored.stderr
    assert stored.stdout.startswith('stored orders/42 version 1 etag "')
    assert obp("kv", "get", "orders/42", "-n", ns, server=server).stdout == "pending"
    obp("kv", "set", "orders/7", "x", "-n", ns, "--content-type", "text/csv", server=server)
    obp("kv", "set", "other", "y", "-n", ns, server=server)

    listed = obp("kv", "list", "-n", ns, "--prefix", "orders/", server=server)
    rows = [line.split() for line in listed.stdout.strip().splitlines()]
    assert rows == [
        ["orders/42", "7", "text/plain;", "charset=utf-8", "v1"],
        ["orders/7", "1", "text/csv", "v1"],
    ]
    deleted = obp("kv", "delete", "orders/42", "-n", ns, server=server)
    assert deleted.stdout.strip() == "deleted orders/42"
    assert obp("kv", "delete", "orders/42", "-n", ns, server=server).returncode == 0
    _error_line(obp("kv", "get", "orders/42", "-n", ns, server=server), "error: 404")
    assert obp("kv", "list", "-n", ns, "--prefix", "none", server=server).stdout == "no keys\n"


def test_binary_values_travel_exactly_through_stdin_stdout_and_files(
    server: ServerProcess, ns: str, tmp_path: Path
) -> None:
    blob = bytes(range(256)) * 40 + b"\n\n"
    piped = obp_bytes("kv", "set", "blob", "-n", ns, server=server, stdin=blob)
    assert piped.returncode == 0, piped.stderr
    assert obp_bytes("kv", "get", "blob", "-n", ns, server=server).stdout == blob

    source = tmp_path / "data.json"
    source.write_bytes(b'{"a": 1}\n')
    from_file = obp("kv", "set", "doc", "-n", ns, "--file", str(source), "--json", server=server)
    assert json.loads(from_file.stdout)["content_type"] == "application/json"
    target = tmp_path / "out.json"
    got = obp("kv", "get", "doc", "-n", ns, "--output", str(target), server=server)
    assert (got.returncode, got.stdout) == (0, "")
    assert target.read_bytes() == source.read_bytes()

    described = json.loads(obp("kv", "get", "blob", "-n", ns, "--json", server=server).stdout)
    assert described["size"] == len(blob)
    assert "value_base64" in described
    text = json.loads(obp("kv", "get", "doc", "-n", ns, "--json", server=server).stdout)
    assert text["value"] == '{"a": 1}\n'


def test_conditions_and_ttl_from_the_command_line(server: ServerProcess, ns: str) -> None:
    first = json.loads(obp("kv", "set", "k", "one", "-n", ns, "--json", server=server).stdout)
    refused = obp("kv", "set", "k", "two", "-n", ns, "--if-absent", server=server)
    _error_line(refused, "error: 412")
    stale = obp("kv", "set", "k", "two", "-n", ns, "--if-match", '"0000"', server=server)
    _error_line(stale, "error: 412")
    # The etag as printed (quoted) or bare, as copied from a terminal.
    swapped = obp(
        "kv", "set", "k", "two", "-n", ns, "--if-match", first["etag"].strip('"'), "--json",
        "--ttl", "600", server=server,
    )  # fmt: skip
    assert swapped.returncode == 0, swapped.stderr
    second = json.loads(swapped.stdout)
    assert (second["version"], second["created"]) == (2, False)
    assert second["expires_at"] is not None
    kept = obp("kv", "delete", "k", "-n", ns, "--if-match", first["etag"], server=server)
    _error_line(kept, "error: 412")
    assert (
        obp("kv", "delete", "k", "-n", ns, "--if-match", second["etag"], server=server).returncode
        == 0
    )


def test_errors_exit_1_with_one_line(server: ServerProcess, ns: str, tmp_path: Path) -> None:
    line = _error_line(
        obp("kv", "set", "k", "v", "-n", ns, "--ttl", "0", server=server), "error: 422"
    )
    assert "x-obp-ttl" in line
    _error_line(obp("kv", "get", "k", "-n", f"missing-{ns}", server=server), "error: 404")
    both = obp("kv", "set", "k", "v", "-n", ns, "--file", str(tmp_path / "f"), server=server)
    assert both.returncode == 2
    assert "not both" in both.stderr
