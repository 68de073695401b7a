"""Refresh grants (rotating the refresh token every time) against the bare `GET /healthz` of the
same server and run."""

from __future__ import annotations

import dataclasses
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.connections import ClientKind
from bench.iam import create_login, create_namespace
from bench.load import Limits, LoadGenerator, LoadResult, Workload, summarize
from bench.report import Outcome
from bench.server import BenchServer

NAMESPACE = "bench-iam"
LOGIN = "bench-user"
TOKEN_PATH = f"/api/v1/namespaces/{NAMESPACE}/iam/token"


def run(*, quick: bool, client: ClientKind = "httpx") -> Outcome:
    """Interleave rounds of bare GETs and refresh grants under the same load; compare rates."""
    rounds = 2 if quick else 3
    duration_s = 2.0 if quick else 5.0
    concurrency = 16
    warmup = concurrency * 5
    with tempfile.TemporaryDirectory(prefix="obp-bench-") as tmp, BenchServer(Path(tmp)) as server:
        token = server.admin_token()
        create_namespace(server, NAMESPACE, token=token)
        password = create_login(server, NAMESPACE, LOGIN, token=token)
        # One login (one refresh-token family) per connection: two connections presenting the
        # same token would be reuse, which revokes the family.
        with ThreadPoolExecutor(max_workers=4) as pool:
            logins = pool.map(
                lambda _: server.password_grant(NAMESPACE, LOGIN, password), range(concurrency)
            )
            first_tokens = tuple(str(login["refresh_token"]) for login in logins)
        bare = Workload(server.url, paths=("/healthz",))
        refresh = Workload(
            server.url, paths=(TOKEN_PATH,), method="POST", refresh_tokens=first_tokens
        )
        limits = Limits(
            concurrency,
            duration_s=duration_s,
            warmup_requests=warmup,
            watch_pids=server.pids(),
            client=client,
        )
        runs: dict[str, list[LoadResult]] = {"bare": [], "refresh": []}
        with LoadGenerator() as load:
            for number in range(rounds):
                # bare, refresh; refresh, bare; ...: drift in machine load hits both alike.
                order = ["bare", "refresh"] if number % 2 == 0 else ["refresh", "bare"]
                for name in order:
                    print(f"refresh_grant: round {number + 1} {name}", file=sys.stderr)
                    result = load.run(bare if name == "bare" else refresh, limits)
                    runs[name].append(result)
                    if name == "refresh":
                        # Go on with each connection's newest token (the old ones are used up).
                        refresh = dataclasses.replace(refresh, refresh_tokens=result.refresh_tokens)
    bare_summary = summarize(runs["bare"])
    refresh_summary = summarize(runs["refresh"])
    per_round = [
        round(_rate(r) / _rate(b), 3) for b, r in zip(runs["bare"], runs["refresh"], strict=True)
    ]
    bare_cpu = bare_summary["server_cpu_ms_per_request"]
    refresh_cpu = refresh_summary["server_cpu_ms_per_request"]
    notes = []
    for name, summary in (("bare", bare_summary), ("refresh", refresh_summary)):
        if summary["unexpected_status"] or summary["transport_errors"]:
            notes.append(
                f"{name}: statuses {summary['statuses']}, errors {summary['transport_errors']}"
            )
    return Outcome(
        notes=notes,
        parameters={
            "rounds": rounds,
            "duration_s_per_round": duration_s,
            "concurrency": concurrency,
            "client": client,
            "warmup_requests_per_round": warmup,
            "bare_path": "/healthz",
            "refresh_path": TOKEN_PATH,
            "body": "application/x-www-form-urlencoded grant_type=refresh_token; each "
            "connection sends the refresh token of its previous response (one family per "
            "connection)",
            "server": "obp serve, defaults (SQLite, 1 worker, log level info)",
        },
        results={
            "bare": bare_summary,
            "refresh": refresh_summary,
            "ratio_per_round": per_round,
            "server_cpu_ratio": (
                round(bare_cpu / refresh_cpu, 3) if bare_cpu and refresh_cpu else None
            ),
        },
        ratio=(
            round(refresh_summary["rps"] / bare_summary["rps"], 3) if bare_summary["rps"] else None
        ),
        baseline="refresh_rps / bare_rps (GET /healthz, same server, same run, same load)",
    )


def _rate(run: LoadResult) -> float:
    return len(run.latencies) / run.elapsed_s if run.elapsed_s else float("nan")
