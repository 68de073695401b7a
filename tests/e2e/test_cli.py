"""The `obp` command against a real server: human output, --json, one-line errors."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from obp import __version__
from tests.principals import ADMIN_PASSWORD
from tests.process import OBP, ServerProcess, free_port


def obp(
    *args: str, server: ServerProcess | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a user would, with the login `obp login` stored for `server`."""
    extra = ("--url", server.url) if server is not None else ()
    env = {**os.environ, "OBP_CONFIG_DIR": str(server.log_path.parent / "cli")} if server else None
    return subprocess.run(
        [str(OBP), *args, *extra],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        input=stdin,
        env=env,
    )


@pytest.fixture(autouse=True)
def _logged_in(request: pytest.FixtureRequest) -> None:
    """Log the CLI in as the admin once per server (tests without a server need no login)."""
    if "server" not in request.fixturenames:
        return
    server: ServerProcess = request.getfixturevalue("server")
    result = obp("login", "--password-stdin", server=server, stdin=ADMIN_PASSWORD + "\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "logged in as admin in global"


def test_commands_without_a_login_are_refused_in_one_line(server: ServerProcess) -> None:
    assert obp("logout", server=server).returncode == 0
    result = obp("namespace", "list", server=server)
    assert result.returncode == 1
    assert result.stderr.startswith("error: 401 Unauthorized")
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_wrong_password_is_refused_without_saying_why(server: ServerProcess) -> None:
    result = obp("login", "--password-stdin", server=server, stdin="not the password\n")
    assert result.returncode == 1
    assert "invalid username or password" in result.stderr


def test_version_prints_the_package_version() -> None:
    assert obp("version").stdout.strip() == f"obp {__version__}"
    assert json.loads(obp("version", "--json").stdout) == {"version": __version__}


def test_namespace_lifecycle_through_the_cli(server: ServerProcess) -> None:
    name = f"cli-{secrets.token_hex(4)}"
    created = obp("namespace", "create", name, "--full-name", "CLI Co", server=server)
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip() == f"created namespace {name}"

    shown = obp("namespace", "get", name, "--json", server=server)
    assert json.loads(shown.stdout)["full_name"] == "CLI Co"

    listed = obp("namespace", "list", "--q", name, server=server)
    assert listed.stdout.split() == [name, "CLI", "Co"]

    deleted = obp("namespace", "delete", name, server=server)
    assert deleted.returncode == 0
    assert obp("namespace", "get", name, server=server).returncode == 1


def test_errors_exit_non_zero_with_one_line_reason(server: ServerProcess) -> None:
    result = obp("namespace", "create", "Bad_Name", server=server)
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: 422 Invalid input: name:")


def test_unreachable_server_is_a_one_line_error() -> None:
    result = subprocess.run(
        [str(OBP), "namespace", "list", "--url", "http://127.0.0.1:9"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip().startswith("error: cannot reach http://127.0.0.1:9")
    assert len(result.stderr.strip().splitlines()) == 1


def test_serve_refuses_unknown_backend_scheme_naming_accepted_ones() -> None:
    result = subprocess.run(
        [str(OBP), "serve", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"OBP_BUS_URL": "kafka://localhost", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2
    assert "OBP_BUS_URL" in result.stderr
    assert "accepted: amqp://, amqps://, memory://" in result.stderr


def test_serve_refuses_several_workers_on_in_process_backends() -> None:
    result = obp("serve", "--workers", "2")
    assert result.returncode == 2
    assert "OBP_CACHE_URL" in result.stderr


def test_worker_role_runs_without_http_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [str(OBP), "serve", "--role", "worker", "--port", str(port)],
        cwd=tmp_path,
        env={**os.environ, "OBP_DATA_DIR": str(tmp_path / "obp-data")},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        deadline = time.monotonic() + 30
        line = ""
        while time.monotonic() < deadline and "background roles running" not in line:
            line = process.stderr.readline()
        assert "background roles running: worker" in line
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
    assert (tmp_path / "obp-data" / "obp.db").exists()


def test_iam_policies_and_identities_through_the_cli(server: ServerProcess) -> None:
    ns = f"cli-iam-{secrets.token_hex(3)}"
    assert obp("namespace", "create", ns, server=server).returncode == 0
    made = obp(
        "iam",
        "policy",
        "create",
        "readers",
        "-n",
        ns,
        "--resource",
        "secret:app-*",
        "--action",
        "secret.get",
        "--json",
        server=server,
    )
    assert made.returncode == 0, made.stderr
    policy_id = json.loads(made.stdout)["id"]
    person = obp(
        "iam",
        "identity",
        "create",
        "carol",
        "-n",
        ns,
        "--policy",
        policy_id,
        "--password-stdin",
        "--json",
        server=server,
        stdin="carol's long password\n",
    )
    assert person.returncode == 0, person.stderr
    listed = obp("iam", "identity", "list", "-n", ns, server=server)
    assert "carol" in listed.stdout
    assert "active" in listed.stdout
    refused = obp(
        "iam",
        "policy",
        "create",
        "bad",
        "-n",
        ns,
        "--resource",
        "x",
        "--action",
        "y.z",
        server=server,
    )
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: 422")
