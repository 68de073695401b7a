"""Namespace creations per second over HTTP against raw inserts into the same engine."""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench import baselines, postgres
from bench.connections import ClientKind
from bench.iam import bearer
from bench.load import Limits, LoadGenerator, Workload
from bench.report import Outcome
from bench.server import BenchServer

CONCURRENCY = 16


def run(*, quick: bool, client: ClientKind = "httpx") -> Outcome:
    """Create namespaces through the API, then insert as many rows with bare sqlite3."""
    count = 2_000 if quick else 10_000
    with tempfile.TemporaryDirectory(prefix="obp-bench-") as tmp:
        workdir = Path(tmp)
        raw_db, outbox_db = workdir / "raw.db", workdir / "raw-outbox.db"
        # Half of each baseline before OBP's run and half after, so drift hits all sides alike.
        half = count // 2
        print("namespace_create: raw sqlite3 baselines (first halves)", file=sys.stderr)
        raw = [baselines.insert_namespaces(raw_db, count=half)]
        with_outbox = [baselines.insert_namespaces(outbox_db, count=half, outbox=True)]
        print(f"namespace_create: {count} creations over HTTP", file=sys.stderr)
        obp = _obp_creates(workdir, count=count, env={}, client=client)
        print("namespace_create: raw sqlite3 baselines (second halves)", file=sys.stderr)
        rest = count - half
        raw.append(baselines.insert_namespaces(raw_db, count=rest, first=half))
        with_outbox.append(
            baselines.insert_namespaces(outbox_db, count=rest, first=half, outbox=True)
        )
    raw_seconds, outbox_seconds = sum(raw), sum(with_outbox)
    raw_per_s = count / raw_seconds
    results: dict[str, Any] = {
        "obp": obp,
        "raw_sqlite": _rates(raw, count),
        # Closer to what OBP commits: the namespace row and its event in one transaction.
        "raw_sqlite_with_outbox": _rates(with_outbox, count),
        "ratio_vs_raw_with_outbox": round(obp["per_s"] * outbox_seconds / count, 4),
        "postgres": _postgres_or_skip(count, client),
    }
    return Outcome(
        parameters={
            "creations": count,
            "concurrency": CONCURRENCY,
            "client": client,
            "raw_baseline": "stdlib sqlite3, one BEGIN IMMEDIATE..COMMIT per row, "
            "journal_mode=WAL, synchronous=FULL, same disk",
            "server": "obp serve, defaults (SQLite, 1 worker, log level info)",
        },
        results=results,
        ratio=round(obp["per_s"] / raw_per_s, 4),
        baseline="obp_per_s / raw_sqlite_per_s (same row count, same pragmas, same run)",
    )


def _rates(halves: list[float], count: int) -> dict[str, Any]:
    """Rows per second overall and per half (the spread shows how noisy the disk was)."""
    first = count // 2
    return {
        "rows": count,
        "seconds": round(sum(halves), 3),
        "per_s": round(count / sum(halves)),
        "per_s_halves": [round(first / halves[0]), round((count - first) / halves[1])],
    }


def _obp_creates(
    workdir: Path, *, count: int, env: Mapping[str, str], client: ClientKind
) -> dict[str, Any]:
    """Start a server in `workdir`, create `count` namespaces over HTTP; what was measured."""
    with BenchServer(workdir, env=env) as server, LoadGenerator() as load:
        workload = Workload(
            server.url,
            paths=("/api/v1/namespaces",),
            headers=bearer(server.admin_token()),
            method="POST",
            create_prefix="bench-",
            expect_status=201,
        )
        limits = Limits(
            CONCURRENCY,
            requests=count,
            warmup_requests=CONCURRENCY * 4,
            watch_pids=server.pids(),
            client=client,
        )
        summary = load.run(workload, limits).summary()
        if server.db_path.exists():
            # Events not yet relayed when the load stopped: does the relay keep up?
            summary["outbox_pending_after"] = baselines.count_rows(server.db_path, "outbox")
            summary["namespaces_in_db"] = baselines.count_rows(server.db_path, "namespaces")
    summary["per_s"] = summary["rps"]
    return summary


def _postgres_or_skip(count: int, client: ClientKind) -> dict[str, Any]:
    url = postgres.server_url()
    if url is None:
        return {"skipped": f"set {postgres.URL_VARIABLE} to also measure PostgreSQL"}
    print("namespace_create: PostgreSQL", file=sys.stderr)
    return asyncio.run(_postgres(url, count, client))


async def _postgres(url: str, count: int, client: ClientKind) -> dict[str, Any]:
    async with postgres.fresh_database(url) as obp_url, postgres.fresh_database(url) as raw_url:
        with tempfile.TemporaryDirectory(prefix="obp-bench-") as tmp:
            env = {"OBP_DATABASE_URL": postgres.sqlalchemy_url(obp_url)}
            obp = await asyncio.to_thread(
                _obp_creates, Path(tmp), count=count, env=env, client=client
            )
        raw_seconds = await postgres.insert_namespaces(
            raw_url, count=count, concurrency=CONCURRENCY
        )
    raw_per_s = count / raw_seconds
    return {
        "obp": obp,
        "raw_asyncpg": {
            "rows": count,
            "concurrency": CONCURRENCY,
            "seconds": round(raw_seconds, 3),
            "per_s": round(raw_per_s),
        },
        "ratio": round(obp["per_s"] / raw_per_s, 4),
    }
