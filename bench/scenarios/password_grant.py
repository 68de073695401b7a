"""Password grants over HTTP against raw argon2-cffi verifications of the same hash, in one run."""

from __future__ import annotations

import sqlite3
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path

import argon2

from bench.connections import ClientKind
from bench.iam import create_login, create_namespace
from bench.load import Limits, LoadGenerator, LoadResult, Workload, summarize
from bench.report import Outcome
from bench.server import BenchServer
from obp.services.iam import passwords

NAMESPACE = "bench-iam"
LOGIN = "bench-user"
TOKEN_PATH = f"/api/v1/namespaces/{NAMESPACE}/iam/token"


def run(*, quick: bool, client: ClientKind = "httpx") -> Outcome:
    """Interleave rounds of raw verifications and HTTP logins, the same count and concurrency."""
    rounds = 2 if quick else 3
    grants = 60 if quick else 200
    concurrency = 4
    warmup = 2 * concurrency
    with tempfile.TemporaryDirectory(prefix="obp-bench-") as tmp, BenchServer(Path(tmp)) as server:
        token = server.admin_token()
        create_namespace(server, NAMESPACE, token=token)
        password = create_login(server, NAMESPACE, LOGIN, token=token)
        # The raw baseline verifies the very hash the server stores, so the same parameters.
        stored = _stored_hash(server.db_path, NAMESPACE, LOGIN)
        parameters = argon2.extract_parameters(stored)
        raw = argon2.PasswordHasher.from_parameters(parameters)
        # Every login succeeds: failures would count towards the login's throttle (locked
        # after 5), and a wrong password costs the same argon2 work anyway.
        workload = Workload(
            server.url,
            paths=(TOKEN_PATH,),
            method="POST",
            form=(("grant_type", "password"), ("username", LOGIN), ("password", password)),
        )
        limits = Limits(
            concurrency,
            requests=grants,
            warmup_requests=warmup,
            watch_pids=server.pids(),
            client=client,
        )
        http_runs: list[LoadResult] = []
        raw_runs: list[dict[str, float]] = []
        with LoadGenerator() as load, ThreadPoolExecutor(max_workers=concurrency) as pool:
            _verify_many(pool, raw, stored, password, count=warmup)
            for number in range(rounds):
                # raw, http; http, raw; ...: drift in machine load hits both sides alike.
                order = ["raw", "http"] if number % 2 == 0 else ["http", "raw"]
                for name in order:
                    print(f"password_grant: round {number + 1} {name}", file=sys.stderr)
                    if name == "raw":
                        raw_runs.append(_verify_many(pool, raw, stored, password, count=grants))
                    else:
                        http_runs.append(load.run(workload, limits))
    http = summarize(http_runs)
    raw_elapsed = sum(r["elapsed_s"] for r in raw_runs)
    raw_count = sum(r["count"] for r in raw_runs)
    raw_cpu = sum(r["cpu_s"] for r in raw_runs)
    raw_summary = {
        "verifications": raw_count,
        "elapsed_s": round(raw_elapsed, 3),
        "per_s": round(raw_count / raw_elapsed, 1),
        "cpu_util": round(raw_cpu / raw_elapsed, 3),
        "cpu_ms_per_verification": round(raw_cpu * 1000 / raw_count, 3),
    }
    per_round = [
        round((len(h.latencies) / h.elapsed_s) / (r["count"] / r["elapsed_s"]), 3)
        for h, r in zip(http_runs, raw_runs, strict=True)
    ]
    notes = []
    if http["unexpected_status"] or http["transport_errors"]:
        notes.append(f"statuses {http['statuses']}, errors {http['transport_errors']}")
    return Outcome(
        notes=notes,
        parameters={
            "rounds": rounds,
            "grants_per_round": grants,
            "concurrency": concurrency,
            "client": client,
            "warmup_per_round": warmup,
            "path": TOKEN_PATH,
            "body": "application/x-www-form-urlencoded grant_type=password (always the right "
            "password)",
            "server": "obp serve, defaults (SQLite, 1 worker, log level info)",
            "server_hash_concurrency": passwords.default_max_concurrency(),
            "argon2": {
                "type": parameters.type.name,
                "time_cost": parameters.time_cost,
                "memory_cost_kib": parameters.memory_cost,
                "parallelism": parameters.parallelism,
                "hash_len": parameters.hash_len,
                "salt_len": parameters.salt_len,
            },
            "baseline": f"argon2.PasswordHasher.verify of the stored hash in a "
            f"ThreadPoolExecutor of {concurrency}, in the bench process",
        },
        results={
            "http": http,
            "raw_argon2": raw_summary,
            "ratio_per_round": per_round,
            "server_cpu_ms_per_grant_over_raw_cpu_ms_per_verification": (
                round(http["server_cpu_ms_per_request"] / raw_summary["cpu_ms_per_verification"], 3)
                if http["server_cpu_ms_per_request"]
                else None
            ),
        },
        ratio=round(http["rps"] / raw_summary["per_s"], 3),
        baseline="grants_per_s / raw_argon2_verifications_per_s (same hash, same concurrency, "
        "same run)",
    )


def _stored_hash(db_path: Path, namespace: str, login: str) -> str:
    with closing(sqlite3.connect(db_path)) as conn:
        row = conn.execute(
            "SELECT password_hash FROM iam_identities WHERE namespace = ? AND name = ?",
            (namespace, login),
        ).fetchone()
    if row is None or not row[0]:
        raise RuntimeError(f"no password hash stored for {login!r} in {namespace!r}")
    return str(row[0])


def _verify_many(
    pool: ThreadPoolExecutor,
    hasher: argon2.PasswordHasher,
    stored: str,
    password: str,
    *,
    count: int,
) -> dict[str, float]:
    """Verify `count` times on the pool's threads; elapsed seconds and this process's CPU."""
    cpu_before = time.process_time()
    started = time.perf_counter()
    results = list(pool.map(lambda _: hasher.verify(stored, password), range(count)))
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_before
    if not all(results):
        raise RuntimeError("a raw verification failed")
    return {"count": count, "elapsed_s": elapsed, "cpu_s": cpu}
