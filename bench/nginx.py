"""nginx (the Debian package) serving one directory on a free loopback port: the files baseline."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from bench.server import HOST, free_port

INSTALL_HINT = "nginx is not installed: run scripts/install-system-packages.sh (as root)"

CONFIG = """\
daemon off;
master_process off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{
    worker_connections 256;
}}
http {{
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{
        listen {host}:{port};
        root {root};
    }}
}}
"""


def nginx_binary() -> str:
    """The nginx executable (also looked for in /usr/sbin, which not every PATH holds)."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise RuntimeError(INSTALL_HINT)
    return found


class Nginx:
    """One nginx process serving `root` at `url`; its config, logs and pid live in `prefix`."""

    def __init__(self, prefix: Path, root: Path) -> None:
        self.prefix = prefix
        self.root = root
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self._binary = nginx_binary()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The process id of nginx."""
        if self._process is None:
            raise RuntimeError("nginx is not running")
        return self._process.pid

    def start(self, *, timeout: float = 15.0) -> Self:
        """Write the configuration, start nginx and wait until it accepts connections."""
        self.prefix.mkdir(parents=True, exist_ok=True)
        config = self.prefix / "nginx.conf"
        text = CONFIG.format(prefix=self.prefix, host=HOST, port=self.port, root=self.root)
        config.write_text(text)
        error_log = self.prefix / "error.log"
        with (self.prefix / "nginx.out").open("ab") as out:
            self._process = subprocess.Popen(
                # -e: the log of startup, before the configuration is read.
                [self._binary, "-c", str(config), "-p", str(self.prefix), "-e", str(error_log)],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"nginx exited early:\n{self.log_tail()}")
            with contextlib.suppress(OSError), socket.create_connection((HOST, self.port), 0.5):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"nginx did not listen within {timeout} s:\n{self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM (fast shutdown) and wait; SIGKILL if it does not stop in time."""
        if self._process is None:
            return
        process, self._process = self._process, None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def log_tail(self, size: int = 4000) -> str:
        """The end of nginx's error log and output, for error messages."""
        parts = []
        for name in ("error.log", "nginx.out"):
            with contextlib.suppress(FileNotFoundError):
                parts.append((self.prefix / name).read_text(errors="replace")[-size:])
        return "\n".join(parts)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
