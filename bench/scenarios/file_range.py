"""A 4 KiB range from the middle of a large file: OBP's latency against nginx's, same bytes."""

from __future__ import annotations

import statistics
import sys
import time
from typing import Any

from bench.connections import ClientKind
from bench.files import (
    MIB,
    Batch,
    FileBench,
    Payload,
    Side,
    file_chunks,
    latency_ms,
    mib_per_s,
)
from bench.report import Outcome

NAME = "large.bin"
RANGE_BYTES = 4096
WARMUP = 20


def run(*, quick: bool, client: ClientKind = "raw") -> Outcome:
    """Interleave rounds of sequential range GETs to nginx and OBP; compare median latency."""
    size = (64 if quick else 1024) * MIB
    rounds = 2 if quick else 3
    per_round = 100 if quick else 300
    offset = size // 2 // RANGE_BYTES * RANGE_BYTES
    wanted = (("Range", f"bytes={offset}-{offset + RANGE_BYTES - 1}"),)
    runs: dict[str, list[Batch]] = {"nginx": [], "obp": []}
    with FileBench("range", client) as bench:
        source = bench.www / NAME
        sha256 = Payload().write(source, size)
        with source.open("rb") as data:
            data.seek(offset)
            expected = data.read(RANGE_BYTES)
        obp, web = bench.obp(), bench.web()
        try:
            print(f"file_range: uploading {size // MIB} MiB", file=sys.stderr)
            started = time.perf_counter()
            stored = bench.upload(obp, NAME, file_chunks(source), size)
            upload_s = time.perf_counter() - started
            if (stored["size"], stored["sha256"]) != (size, sha256):
                raise RuntimeError(f"OBP stored {stored['size']} bytes, sha256 {stored['sha256']}")
            sides = {
                "nginx": Side("nginx", web, f"/{NAME}", wanted, (bench.nginx.pid,)),
                "obp": Side(
                    "obp",
                    obp,
                    bench.file_path(stored["id"]),
                    (*bench.auth(), *wanted),
                    bench.server_pids(),
                ),
            }
            for side in sides.values():
                done = side.download(keep=True).transfer
                if (done.status, done.content) != (206, expected):
                    raise RuntimeError(f"{side.name} answered {done.status}, not the range")
                side.batch(WARMUP)
            for number in range(rounds):
                # nginx, obp; obp, nginx; ...: drift in machine load hits both sides alike.
                order = ["nginx", "obp"] if number % 2 == 0 else ["obp", "nginx"]
                for name in order:
                    print(f"file_range: round {number + 1} {name}", file=sys.stderr)
                    batch = sides[name].batch(per_round)
                    bad = [t.status for t in batch.transfers if t.status != 206]
                    if bad:
                        raise RuntimeError(f"{name} answered {bad[:5]} to range requests")
                    runs[name].append(batch)
        finally:
            obp.close()
            web.close()
    results = {name: _figures(batches) for name, batches in runs.items()}
    obp_median, nginx_median = (
        statistics.median(t.seconds for batch in runs[name] for t in batch.transfers)
        for name in ("obp", "nginx")
    )
    return Outcome(
        parameters={
            "file_mib": size // MIB,
            "range": f"bytes={offset}-{offset + RANGE_BYTES - 1}",
            "rounds": rounds,
            "requests_per_round": per_round,
            "warmup_requests": WARMUP,
            "client": client,
            "connection": "one keep-alive connection per side, one request at a time",
            "obp_path": "GET /api/v1/namespaces/{ns}/files/{id} with Range, admin Bearer token",
            "nginx": "Debian nginx, master_process off, 1 worker, sendfile on, access_log off",
            "server": "obp serve, defaults (SQLite, 1 worker, file:// blob store)",
        },
        results={
            **results,
            "ratio_per_round": [
                round(_median(o) / _median(n), 3)
                for n, o in zip(runs["nginx"], runs["obp"], strict=True)
            ],
            "upload": {"seconds": round(upload_s, 3), "mib_per_s": mib_per_s(size, upload_s)},
        },
        ratio=round(obp_median / nginx_median, 3) if nginx_median else None,
        baseline="obp_p50_ms / nginx_p50_ms (latency: above 1 is slower; same run and client)",
    )


def _figures(batches: list[Batch]) -> dict[str, Any]:
    count = sum(len(batch.transfers) for batch in batches)
    server_cpu = sum(batch.server_cpu_s for batch in batches)
    client_cpu = sum(batch.client_cpu_s for batch in batches)
    return {
        "requests": count,
        "latency_ms": latency_ms([t.seconds for batch in batches for t in batch.transfers]),
        "server_cpu_s": round(server_cpu, 3),
        "server_cpu_ms_per_request": round(server_cpu * 1000 / count, 4),
        "client_cpu_ms_per_request": round(client_cpu * 1000 / count, 4),
    }


def _median(batch: Batch) -> float:
    return statistics.median(t.seconds for t in batch.transfers)
