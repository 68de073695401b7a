"""Downloading one file from OBP against nginx (sendfile) serving the same bytes on loopback."""

from __future__ import annotations

import hashlib
import statistics
import sys
from typing import Any

from bench.connections import ClientKind
from bench.files import MIB, FileBench, Measured, Payload, Side, file_chunks, mib_per_s, spread
from bench.report import Outcome

NAME = "payload.bin"


def run(*, quick: bool, client: ClientKind = "raw") -> Outcome:
    """Download the same file in turn from nginx and OBP, one at a time; compare median MiB/s."""
    size = (16 if quick else 256) * MIB
    downloads = 3 if quick else 7
    runs: dict[str, list[Measured]] = {"nginx": [], "obp": []}
    with FileBench("download", client) as bench:
        source = bench.www / NAME
        sha256 = Payload().write(source, size)
        obp, web = bench.obp(), bench.web()
        try:
            stored = bench.upload(obp, NAME, file_chunks(source), size)
            if (stored["size"], stored["sha256"]) != (size, sha256):
                raise RuntimeError(f"OBP stored {stored['size']} bytes, sha256 {stored['sha256']}")
            sides = {
                "nginx": Side("nginx", web, f"/{NAME}", (), (bench.nginx.pid,)),
                "obp": Side(
                    "obp", obp, bench.file_path(stored["id"]), bench.auth(), bench.server_pids()
                ),
            }
            for side in sides.values():
                # Untimed: checks the bytes, opens the connection, fills the page cache.
                digest = hashlib.sha256()
                done = side.transfers.download(side.path, headers=side.headers, sink=digest.update)
                if (done.status, done.body_bytes, digest.hexdigest()) != (200, size, sha256):
                    raise RuntimeError(f"{side.name} served {done} (sha256 {digest.hexdigest()})")
            for number in range(downloads):
                # nginx, obp; obp, nginx; ...: drift in machine load hits both sides alike.
                order = ["nginx", "obp"] if number % 2 == 0 else ["obp", "nginx"]
                for name in order:
                    print(f"file_download: download {number + 1} {name}", file=sys.stderr)
                    measured = sides[name].download()
                    if (measured.transfer.status, measured.transfer.body_bytes) != (200, size):
                        raise RuntimeError(f"{name} answered {measured.transfer}")
                    runs[name].append(measured)
        finally:
            obp.close()
            web.close()
    results = {name: _figures(measured, size) for name, measured in runs.items()}
    per_round = [
        round(b.transfer.seconds / o.transfer.seconds, 3)
        for b, o in zip(runs["nginx"], runs["obp"], strict=True)
    ]
    obp_rate, nginx_rate = (
        statistics.median(mib_per_s(size, m.transfer.seconds) for m in runs[name])
        for name in ("obp", "nginx")
    )
    return Outcome(
        parameters={
            "file_mib": size // MIB,
            "downloads_per_side": downloads,
            "client": client,
            "connection": "one keep-alive connection per side, downloads one at a time",
            "obp_path": "GET /api/v1/namespaces/{ns}/files/{id}, admin Bearer token",
            "nginx": "Debian nginx, master_process off, 1 worker, sendfile on, access_log off",
            "server": "obp serve, defaults (SQLite, 1 worker, file:// blob store)",
        },
        results={**results, "ratio_per_round": per_round},
        ratio=round(obp_rate / nginx_rate, 3) if nginx_rate else None,
        baseline="obp_mib_per_s / nginx_mib_per_s (same bytes, same client, medians, same run)",
    )


def _figures(measured: list[Measured], size: int) -> dict[str, Any]:
    gib = size / (1024 * MIB)
    return {
        "mib_per_s": spread([mib_per_s(size, m.transfer.seconds) for m in measured]),
        "seconds": spread([m.transfer.seconds for m in measured], 4),
        "server_cpu_s_per_gib": round(statistics.median(m.server_cpu_s for m in measured) / gib, 3),
        "client_cpu_s_per_gib": round(statistics.median(m.client_cpu_s for m in measured) / gib, 3),
    }
