"""Server memory with 100 namespaces against many: per-namespace cost must be flat."""

from __future__ import annotations

import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench import baselines
from bench.iam import bearer
from bench.report import Outcome
from bench.server import BenchServer

SMALL = 100
GETS_PER_TOUCH = 2_000
PAGE_SIZE = 1_000
SETTLE_S = 1.0


def run(*, quick: bool, client: str = "httpx") -> Outcome:
    """Measure RSS after touching 100 namespaces, then after touching `large` of them.

    `client` is unused: these requests are sequential, from this process, not a load test.
    """
    large = 10_000 if quick else 100_000
    passes = 1 if quick else 2
    rng = random.Random(20261121)  # the same sample every run
    small_names = [f"mem-{n:06d}" for n in range(SMALL)]
    seeded_names = [f"seed-{n:06d}" for n in range(large - SMALL)]
    with (
        tempfile.TemporaryDirectory(prefix="obp-bench-") as tmp,
        BenchServer(Path(tmp)) as server,
        httpx.Client(
            base_url=server.url, timeout=60.0, headers=dict(bearer(server.admin_token()))
        ) as http,
    ):
        print(f"namespace_memory: creating {SMALL} over HTTP", file=sys.stderr)
        for name in small_names:
            http.post("/api/v1/namespaces", json={"name": name}).raise_for_status()
        # The same number of GETs in both phases, so warm-up costs fall on both alike.
        small_sample = small_names + rng.choices(small_names, k=GETS_PER_TOUCH - SMALL)
        small = _phase(server, http, small_sample, expected=SMALL, passes=passes)
        print(f"namespace_memory: seeding {len(seeded_names)} into SQLite", file=sys.stderr)
        seed_seconds = baselines.seed_namespaces(server.db_path, names=seeded_names)
        large_sample = rng.sample(small_names + seeded_names, GETS_PER_TOUCH)
        big = _phase(server, http, large_sample, expected=large, passes=passes)
    rss_small = small["memory"]["rss_total"]
    rss_large = big["memory"]["rss_total"]
    uss_small = small["memory"]["uss_total"]
    uss_large = big["memory"]["uss_total"]
    return Outcome(
        parameters={
            "small": SMALL,
            "large": large,
            "gets_per_touch": GETS_PER_TOUCH,
            "page_size": PAGE_SIZE,
            "touch_passes": passes,
            "settle_s": SETTLE_S,
            "memory": "sum over the Granian main process and its worker (psutil)",
            "seeding": "stdlib sqlite3 into the server's namespaces table, 10,000 rows a batch",
        },
        results={
            f"rss_after_{SMALL}": rss_small,
            f"rss_after_{large}": rss_large,
            "bytes_per_namespace": round((rss_large - rss_small) / (large - SMALL), 1),
            f"uss_after_{SMALL}": uss_small,
            f"uss_after_{large}": uss_large,
            "uss_bytes_per_namespace": round((uss_large - uss_small) / (large - SMALL), 1),
            "seed_seconds": round(seed_seconds, 3),
            "small": small,
            "large": big,
        },
        ratio=round(rss_large / rss_small, 4),
        baseline=f"rss_{large} / rss_{SMALL} (same server process, same run)",
    )


def _phase(
    server: BenchServer, client: httpx.Client, sample: list[str], *, expected: int, passes: int
) -> dict[str, Any]:
    """Touch the namespaces `passes` times, measuring memory after each pass settles."""
    measured = []
    for number in range(passes):
        print(f"namespace_memory: touching {expected} (pass {number + 1})", file=sys.stderr)
        touched = _touch(client, sample, expected=expected)
        time.sleep(SETTLE_S)
        measured.append({**touched, "memory": server.memory()})
    # The last pass is the steady state; earlier ones show whether memory still grows.
    return {"memory": measured[-1]["memory"], "passes": measured}


def _touch(client: httpx.Client, sample: list[str], *, expected: int) -> dict[str, Any]:
    """GET every name in `sample`, then walk every page of the list."""
    started = time.perf_counter()
    for name in sample:
        client.get(f"/api/v1/namespaces/{name}").raise_for_status()
    gets_seconds = time.perf_counter() - started
    started = time.perf_counter()
    listed = pages = 0
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": PAGE_SIZE}
        if cursor is not None:
            params["cursor"] = cursor
        response = client.get("/api/v1/namespaces", params=params)
        response.raise_for_status()
        page = response.json()
        listed += len(page["items"])
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    if listed != expected:
        raise RuntimeError(f"listed {listed} namespaces, expected {expected}")
    return {
        "gets": len(sample),
        "gets_seconds": round(gets_seconds, 3),
        "pages": pages,
        "list_seconds": round(time.perf_counter() - started, 3),
    }
