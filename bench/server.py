"""`obp serve` as a child process on a free loopback port, with its data in a scratch directory."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx
import psutil

HOST = "127.0.0.1"
ADMIN_LOGIN = "admin"
# The directory holding the `bench` package, so a bench-only server command can import it.
REPO_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def obp_command() -> list[str]:
    """The `obp` entry point installed beside this interpreter."""
    script = Path(sys.executable).with_name("obp")
    if not script.exists():
        raise RuntimeError(f"{script} not found: install OBP into this environment first")
    return [str(script)]


class BenchServer:
    """`obp serve` in its own process group (so stopping it reaches Granian's workers too).

    Every server starts with the global admin `ADMIN_LOGIN` and a random `admin_password`;
    `admin_token()` logs it in. `command` replaces `obp serve` (it gets the same `--host` and
    `--port`), e.g. a bench-only server of `bench/apps.py`, with the `bench` package importable.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        env: Mapping[str, str] | None = None,
        command: Sequence[str] | None = None,
    ) -> None:
        self.workdir = workdir
        self.data_dir = workdir / "obp-data"
        self.db_path = self.data_dir / "obp.db"
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.log_path = workdir / "obp-serve.log"
        # Drop the caller's OBP_* settings: a benchmark measures the defaults unless told.
        base = {k: v for k, v in os.environ.items() if not k.startswith("OBP_")}
        self.admin_password = secrets.token_urlsafe(18)
        admin = {"OBP_ADMIN_LOGIN": ADMIN_LOGIN, "OBP_ADMIN_PASSWORD": self.admin_password}
        self._env = {**base, "OBP_DATA_DIR": str(self.data_dir), **admin, **(env or {})}
        self._command = [*obp_command(), "serve"] if command is None else list(command)
        if command is not None:
            path = [str(REPO_ROOT), *filter(None, [base.get("PYTHONPATH")])]
            self._env["PYTHONPATH"] = os.pathsep.join(path)
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The process id of the Granian main process."""
        if self._process is None:
            raise RuntimeError("the server is not running")
        return self._process.pid

    def start(self, *, timeout: float = 60.0) -> Self:
        """Start and wait until `/healthz` answers."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [*self._command, "--host", HOST, "--port", str(self.port)],
                cwd=self.workdir,  # so no obp.toml of the caller's directory is read
                env=self._env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"obp serve exited early:\n{self.log_tail()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"obp serve did not answer within {timeout} s:\n{self.log_tail()}")

    def password_grant(self, namespace: str, username: str, password: str) -> dict[str, Any]:
        """The token response of a `grant_type=password` login (raises unless it succeeds)."""
        response = httpx.post(
            f"{self.url}/api/v1/namespaces/{namespace}/iam/token",
            data={"grant_type": "password", "username": username, "password": password},
            timeout=30.0,
        )
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def admin_token(self) -> str:
        """A fresh access token of the global admin (valid for the server's token lifetime)."""
        return str(self.password_grant("global", ADMIN_LOGIN, self.admin_password)["access_token"])

    def stop(self) -> None:
        """SIGTERM the process group and wait; SIGKILL if it does not stop in time."""
        if self._process is None:
            return
        process, self._process = self._process, None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def processes(self) -> list[psutil.Process]:
        """The main process and its children (the Granian workers)."""
        main = psutil.Process(self.pid)
        return [main, *main.children(recursive=True)]

    def pids(self) -> tuple[int, ...]:
        """Process ids of the main process and its workers."""
        return tuple(process.pid for process in self.processes())

    def memory(self) -> dict[str, Any]:
        """Resident and unique memory (bytes) of each server process, and their sums."""
        rows = []
        for process in self.processes():
            with contextlib.suppress(psutil.NoSuchProcess):
                info = process.memory_full_info()
                rows.append({"pid": process.pid, "rss": info.rss, "uss": info.uss})
        main = rows[0] if rows and rows[0]["pid"] == self.pid else {"rss": 0, "uss": 0}
        workers = [row for row in rows if row["pid"] != self.pid]
        return {
            "rss_total": sum(row["rss"] for row in rows),
            "uss_total": sum(row["uss"] for row in rows),
            "rss_main": main["rss"],
            "rss_workers": sum(row["rss"] for row in workers),
            "uss_workers": sum(row["uss"] for row in workers),
            "processes": len(rows),
        }

    def log_tail(self, size: int = 4000) -> str:
        """The end of the server's output, for error messages."""
        try:
            return self.log_path.read_text(errors="replace")[-size:]
        except FileNotFoundError:
            return ""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
