"""`obp file` against a real server: put, stat, get (whole and a range), list, delete, errors."""

from __future__ import annotations

import hashlib
import json
import secrets
from pathlib import Path

import pytest

from tests.e2e.test_secret_cli import obp
from tests.principals import ADMIN_LOGIN, ADMIN_PASSWORD
from tests.process import ServerProcess


@pytest.fixture(scope="module", autouse=True)
def _logged_in(server: ServerProcess) -> None:
    """`obp login` as the global admin, once per server."""
    login = obp(
        "login", "--username", ADMIN_LOGIN, "--password-stdin",
        server=server, stdin=ADMIN_PASSWORD + "\n",
    )  # fmt: skip
    assert login.returncode == 0, login.stderr


def test_file_commands_round_trip_a_file(server: ServerProcess, tmp_path: Path) -> None:
    namespace = f"cli-{secrets.token_hex(4)}"
    with server.client() as sdk:
        sdk.namespaces.create(namespace)
    source = tmp_path / "report.csv"
    source.write_bytes(b"id,total\n" + b"1,42\n" * 50000)
    put = obp(
        "file", "put", str(source), "-n", namespace, "--metadata", '{"year": 2026}', "--json",
        server=server,
    )  # fmt: skip
    assert put.returncode == 0, put.stderr
    stored = json.loads(put.stdout)
    assert stored["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    assert (stored["name"], stored["content_type"], stored["metadata"]) == (
        "report.csv",
        "text/csv",
        {"year": 2026},
    )

    stat = obp("file", "stat", stored["id"], "-n", namespace, "--json", server=server)
    assert json.loads(stat.stdout)["size"] == source.stat().st_size

    target = tmp_path / "back.csv"
    got = obp("file", "get", stored["id"], "-n", namespace, "-o", str(target), server=server)
    assert got.returncode == 0, got.stderr
    assert target.read_bytes() == source.read_bytes()
    head = obp(
        "file", "get", stored["id"], "-n", namespace, "--start", "0", "--end", "7",
        server=server,
    )  # fmt: skip
    assert head.stdout == "id,total"

    listed = obp("file", "list", "-n", namespace, server=server)
    assert stored["id"] in listed.stdout
    assert "report.csv" in listed.stdout

    deleted = obp("file", "delete", stored["id"], "-n", namespace, server=server)
    assert deleted.returncode == 0, deleted.stderr
    missing = obp("file", "stat", stored["id"], "-n", namespace, server=server)
    assert missing.returncode == 1
    assert "404" in missing.stderr or "does not exist" in missing.stderr


def test_file_put_refuses_metadata_that_is_not_json(server: ServerProcess, tmp_path: Path) -> None:
    source = tmp_path / "a.txt"
    source.write_text("a")
    result = obp("file", "put", str(source), "-n", "x", "--metadata", "{nope", server=server)
    assert result.returncode == 2
    assert "--metadata" in result.stderr
