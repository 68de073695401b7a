"""Run `obp serve` as a real child process, as an operator would, for end-to-end tests."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

from obp.client import Client
from tests.principals import ADMIN_LOGIN, ADMIN_PASSWORD

OBP = Path(sys.executable).with_name("obp")


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """`obp serve` in its own process group, so a kill reaches Granian's workers too."""

    def __init__(
        self,
        *,
        env: Mapping[str, str],
        cwd: Path,
        port: int | None = None,
        args: tuple[str, ...] = (),
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = cwd / f"obp-serve-{self.port}.log"
        # The server gets only the settings a test gives it, never a developer's own OBP_*.
        inherited = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("OBP_") or key.startswith("OBP_TEST_")
        }
        admin = {"OBP_ADMIN_LOGIN": ADMIN_LOGIN, "OBP_ADMIN_PASSWORD": ADMIN_PASSWORD}
        self._env = {**inherited, **admin, **env}
        self._cwd = cwd
        self._args = args
        self._process: subprocess.Popen[bytes] | None = None
        self._admin_token: str | None = None

    @property
    def env(self) -> Mapping[str, str]:
        """The environment the server runs with."""
        return self._env

    def start(self, *, timeout: float = 60.0) -> Self:
        """Start and wait until `/healthz` answers."""
        log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            [str(OBP), "serve", "--port", str(self.port), *self._args],
            cwd=self._cwd,
            env=self._env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"obp serve exited early:\n{self.log_path.read_text()[-4000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(
            f"obp serve did not answer in {timeout}s:\n{self.log_path.read_text()[-4000:]}"
        )

    def client(self) -> Client:
        """An SDK client logged in as the global admin."""
        sdk = Client(self.url)
        sdk.login(ADMIN_LOGIN, ADMIN_PASSWORD)
        return sdk

    def admin_headers(self) -> dict[str, str]:
        """`Authorization` for raw HTTP calls as the global admin (a token good for minutes)."""
        if self._admin_token is None:
            with self.client() as sdk:
                assert sdk.tokens is not None
                self._admin_token = sdk.tokens.access_token
        return {"Authorization": f"Bearer {self._admin_token}"}

    @property
    def pid(self) -> int | None:
        """The `obp serve` process id (also its process group id), while it runs."""
        return None if self._process is None else self._process.pid

    def kill(self) -> None:
        """SIGKILL the whole process group: a crash, with no chance to clean up."""
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        """SIGTERM and wait: a clean shutdown."""
        self._signal(signal.SIGTERM)

    def _signal(self, signum: int) -> None:
        if self._process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signum)
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait(timeout=10)
        self._process = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
