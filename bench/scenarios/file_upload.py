"""Uploading a file to OBP against writing the same chunks to a file on the same disk, fsynced."""

from __future__ import annotations

import hashlib
import os
import statistics
import sys
import time
from pathlib import Path

from bench.connections import ClientKind
from bench.files import MIB, FileBench, Payload, cpu_seconds, mib_per_s, spread
from bench.report import Outcome


def run(*, quick: bool, client: ClientKind = "raw") -> Outcome:
    """Upload (streamed, MiB chunks) and write to disk in turn; compare median MiB/s."""
    size = (16 if quick else 256) * MIB
    uploads = 3 if quick else 7
    payload = Payload()
    seconds: dict[str, list[float]] = {"disk": [], "obp": []}
    server_cpu: list[float] = []
    with FileBench("upload", client) as bench:
        pids = bench.server_pids()
        for number in range(uploads):
            salt = number + 1  # every upload a different file
            expected = hashlib.sha256()
            for chunk in payload.chunks(size, salt=salt):
                expected.update(chunk)
            # disk, obp; obp, disk; ...: drift in machine load hits both sides alike.
            order = ["disk", "obp"] if number % 2 == 0 else ["obp", "disk"]
            for name in order:
                print(f"file_upload: upload {number + 1} {name}", file=sys.stderr)
                if name == "disk":
                    seconds["disk"].append(
                        _write(bench.scratch / f"disk-{salt}.bin", payload, size, salt)
                    )
                    continue
                obp = bench.obp()
                try:
                    before = cpu_seconds(pids)
                    started = time.perf_counter()
                    stored = bench.upload(
                        obp, f"upload-{salt}.bin", payload.chunks(size, salt=salt), size
                    )
                    seconds["obp"].append(time.perf_counter() - started)
                    server_cpu.append(cpu_seconds(pids) - before)
                finally:
                    obp.close()
                if (stored["size"], stored["sha256"]) != (size, expected.hexdigest()):
                    raise RuntimeError(
                        f"OBP stored {stored['size']} bytes, sha256 {stored['sha256']}"
                    )
                bench.delete(stored["id"])
    rates = {name: [mib_per_s(size, s) for s in values] for name, values in seconds.items()}
    per_round = [round(d / o, 3) for d, o in zip(seconds["disk"], seconds["obp"], strict=True)]
    obp_rate = statistics.median(rates["obp"])
    disk_rate = statistics.median(rates["disk"])
    gib = size / (1024 * MIB)
    return Outcome(
        parameters={
            "file_mib": size // MIB,
            "chunk_bytes": MIB,
            "uploads_per_side": uploads,
            "client": client,
            "obp_path": "POST /api/v1/namespaces/{ns}/files, raw body, Content-Length, "
            "X-OBP-File-Name, admin Bearer token, a new connection per upload",
            "disk": "open, write each chunk, fsync, close; a file beside the "
            "server's data directory, removed after",
            "server": "obp serve, defaults (SQLite, 1 worker, file:// blob store)",
        },
        results={
            "disk": {"mib_per_s": spread(rates["disk"]), "seconds": spread(seconds["disk"], 4)},
            "obp": {
                "mib_per_s": spread(rates["obp"]),
                "seconds": spread(seconds["obp"], 4),
                "server_cpu_s_per_gib": round(statistics.median(server_cpu) / gib, 3),
            },
            "ratio_per_round": per_round,
        },
        ratio=round(obp_rate / disk_rate, 3) if disk_rate else None,
        baseline="obp_mib_per_s / disk_mib_per_s (same chunks, write+fsync, same disk, medians)",
    )


def _write(path: Path, payload: Payload, size: int, salt: int) -> float:
    """Write the payload to `path` and fsync it; the seconds it took (the file is removed)."""
    started = time.perf_counter()
    with path.open("wb") as out:
        for chunk in payload.chunks(size, salt=salt):
            out.write(chunk)  # a MiB is past the buffer: written straight through
        out.flush()
        os.fsync(out.fileno())
    elapsed = time.perf_counter() - started
    path.unlink()
    return elapsed
