"""KV GET and PUT of 256-byte values against the bare `GET /healthz` of the same server and run."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import httpx

from bench.connections import ClientKind
from bench.iam import bearer, create_namespace
from bench.load import Limits, LoadGenerator, LoadResult, Workload, summarize
from bench.report import Outcome
from bench.server import BenchServer

NAMESPACE = "bench-kv"
VALUE_BYTES = 256
GET_KEY = "bench-value"
PUT_VALUE = bytes(range(256))[:VALUE_BYTES]
KV_STATUSES = {"kv_get": (200,), "kv_put": (200, 201)}


def run_get(*, quick: bool, client: ClientKind = "raw") -> Outcome:
    """Authenticated GETs of one 256-byte value (cache warm) against bare GETs, interleaved."""
    return _compare("kv_get", quick=quick, client=client)


def run_put(*, quick: bool, client: ClientKind = "raw") -> Outcome:
    """Authenticated PUTs of 256 bytes, a new key each, against bare GETs, interleaved."""
    return _compare("kv_put", quick=quick, client=client)


def _compare(scenario: str, *, quick: bool, client: ClientKind) -> Outcome:
    rounds = 2 if quick else 3
    duration_s = 2.0 if quick else 5.0
    concurrency = 16
    # More keys per round than PUTs fit in it, so only the warm-up's keys are written twice.
    keys_per_round = 10_000 if quick else 40_000
    base = f"/api/v1/namespaces/{NAMESPACE}/kv"
    with tempfile.TemporaryDirectory(prefix="obp-bench-") as tmp, BenchServer(Path(tmp)) as server:
        token = server.admin_token()
        create_namespace(server, NAMESPACE, token=token)
        if scenario == "kv_get":
            _put_value(server, token, f"{base}/{GET_KEY}")
        bare = Workload(server.url, paths=("/healthz",))
        limits = Limits(
            concurrency,
            duration_s=duration_s,
            warmup_requests=concurrency * 20,
            watch_pids=server.pids(),
            client=client,
        )
        runs: dict[str, list[LoadResult]] = {"bare": [], "kv": []}
        with LoadGenerator() as load:
            for number in range(rounds):
                # bare, kv; kv, bare; ...: drift in machine load hits both sides alike.
                order = ["bare", "kv"] if number % 2 == 0 else ["kv", "bare"]
                for name in order:
                    print(f"{scenario}: round {number + 1} {name}", file=sys.stderr)
                    if name == "bare":
                        runs["bare"].append(load.run(bare, limits))
                        continue
                    if scenario == "kv_get":
                        paths: tuple[str, ...] = (f"{base}/{GET_KEY}",)
                        workload = Workload(server.url, paths=paths, headers=bearer(token))
                    else:
                        paths = tuple(f"{base}/r{number}-{n:06d}" for n in range(keys_per_round))
                        workload = Workload(
                            server.url,
                            paths=paths,
                            method="PUT",
                            headers=bearer(token),
                            raw=PUT_VALUE,
                            expect_status=201,
                        )
                    runs["kv"].append(load.run(workload, limits))
    bare_summary = summarize(runs["bare"])
    kv_summary = summarize(runs["kv"])
    notes = _check(scenario, runs, keys_per_round)
    bare_cpu = bare_summary["server_cpu_ms_per_request"]
    kv_cpu = kv_summary["server_cpu_ms_per_request"]
    return Outcome(
        notes=notes,
        parameters={
            "rounds": rounds,
            "duration_s_per_round": duration_s,
            "concurrency": concurrency,
            "client": client,
            "warmup_requests_per_round": limits.warmup_requests,
            "value_bytes": VALUE_BYTES,
            "bare_path": "/healthz",
            "kv_path": (
                f"GET {base}/{GET_KEY}"
                if scenario == "kv_get"
                else f"PUT {base}/r<round>-<n> ({keys_per_round} keys a round, in turn)"
            ),
            "server": "obp serve, defaults (SQLite, 1 worker, log level info)",
        },
        results={
            "bare": bare_summary,
            "kv": kv_summary,
            "ratio_per_round": [
                round(_rate(k) / _rate(b), 3) for b, k in zip(runs["bare"], runs["kv"], strict=True)
            ],
            "server_cpu_ratio": round(bare_cpu / kv_cpu, 3) if bare_cpu and kv_cpu else None,
        },
        ratio=round(kv_summary["rps"] / bare_summary["rps"], 3) if bare_summary["rps"] else None,
        baseline="kv_rps / bare_rps (GET /healthz, same server, same run, same load)",
    )


def _put_value(server: BenchServer, token: str, path: str) -> None:
    """Store the value the GETs read, and check it reads back whole, with an ETag."""
    value = bytes(range(256)) * (VALUE_BYTES // 256)
    headers = {**dict(bearer(token)), "Content-Type": "application/octet-stream"}
    stored = httpx.put(f"{server.url}{path}", content=value, headers=headers, timeout=30.0)
    if stored.status_code not in (200, 201):
        raise RuntimeError(f"PUT {path} answered {stored.status_code}: {stored.text[:500]}")
    read = httpx.get(f"{server.url}{path}", headers=dict(bearer(token)), timeout=30.0)
    if read.status_code != 200 or read.content != value or "etag" not in read.headers:
        raise RuntimeError(f"GET {path} answered {read.status_code}, {len(read.content)} bytes")


def _check(scenario: str, runs: dict[str, list[LoadResult]], keys: int) -> list[str]:
    """Raise if any request failed; notes on what to keep in mind reading the figures."""
    for name, results in runs.items():
        allowed = (200,) if name == "bare" else KV_STATUSES[scenario]
        for result in results:
            wrong = {code: n for code, n in result.statuses.items() if code not in allowed}
            if wrong or result.transport_errors:
                raise RuntimeError(
                    f"{scenario} {name}: statuses {result.statuses}, "
                    f"{result.transport_errors} transport errors"
                )
    notes = []
    if scenario == "kv_put":
        most = max(len(result.latencies) for result in runs["kv"])
        notes.append(
            "each round's warm-up writes its first keys, which the measured PUTs then overwrite "
            "(200; the rest create, 201)"
        )
        if most > keys:
            notes.append(f"a round made {most} PUTs over {keys} keys: later ones overwrote")
    return notes


def _rate(run: LoadResult) -> float:
    return len(run.latencies) / run.elapsed_s if run.elapsed_s else float("nan")
