"""`GET /api/v1/namespaces/{ns}` against the bare `GET /healthz` of the same server and run."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import httpx

from bench.connections import ClientKind
from bench.iam import bearer
from bench.load import Limits, LoadGenerator, LoadResult, Workload, summarize
from bench.report import Outcome
from bench.server import BenchServer

NAMESPACE = "bench-get"


def run(*, quick: bool, client: ClientKind = "httpx") -> Outcome:
    """Interleave rounds of bare and namespace GETs under the same load; compare their rates."""
    rounds = 2 if quick else 3
    duration_s = 2.0 if quick else 5.0
    concurrency = 16
    with tempfile.TemporaryDirectory(prefix="obp-bench-") as tmp, BenchServer(Path(tmp)) as server:
        token = server.admin_token()
        created = httpx.post(
            f"{server.url}/api/v1/namespaces",
            json={"name": NAMESPACE},
            headers=dict(bearer(token)),
        )
        created.raise_for_status()
        workloads = {
            "bare": Workload(server.url, paths=("/healthz",)),
            "namespace": Workload(
                server.url, paths=(f"/api/v1/namespaces/{NAMESPACE}",), headers=bearer(token)
            ),
        }
        limits = Limits(
            concurrency,
            duration_s=duration_s,
            warmup_requests=concurrency * 20,
            watch_pids=server.pids(),
            client=client,
        )
        runs: dict[str, list[LoadResult]] = {name: [] for name in workloads}
        with LoadGenerator() as load:
            # bare, ns, bare, ns, ...: drift in machine load hits both sides alike.
            for number in range(rounds):
                for name, workload in workloads.items():
                    print(f"namespace_get: round {number + 1} {name}", file=sys.stderr)
                    runs[name].append(load.run(workload, limits))
    bare = summarize(runs["bare"])
    namespace = summarize(runs["namespace"])
    per_round = [
        round(_rate(ns) / _rate(b), 3)
        for b, ns in zip(runs["bare"], runs["namespace"], strict=True)
    ]
    bare_cpu = bare["server_cpu_ms_per_request"]
    ns_cpu = namespace["server_cpu_ms_per_request"]
    notes = []
    client_cpu = bare["client_cpu_ms_per_request"]
    if client_cpu and bare_cpu and client_cpu > bare_cpu:
        # Sharing the cores, the costlier side sets the rate: then bare_rps measures the client.
        notes.append(
            f"the load generator spent more CPU per bare request ({client_cpu} ms) than the "
            f"server ({bare_cpu} ms): bare_rps and the ratio understate the server; see "
            "server_cpu_ratio, or run with --client raw"
        )
    return Outcome(
        notes=notes,
        parameters={
            "rounds": rounds,
            "duration_s_per_round": duration_s,
            "concurrency": concurrency,
            "client": client,
            "warmup_requests_per_round": limits.warmup_requests,
            "bare_path": "/healthz",
            "namespace_path": f"/api/v1/namespaces/{NAMESPACE}",
            "server": "obp serve, defaults (SQLite, 1 worker, log level info)",
        },
        results={
            "bare": bare,
            "namespace": namespace,
            "ratio_per_round": per_round,
            # Server CPU per request is less sensitive to a saturated client than req/s.
            "server_cpu_ratio": round(bare_cpu / ns_cpu, 3) if bare_cpu and ns_cpu else None,
        },
        ratio=round(namespace["rps"] / bare["rps"], 3) if bare["rps"] else None,
        baseline="ns_rps / bare_rps (GET /healthz, same app, same run, same load)",
    )


def _rate(run: LoadResult) -> float:
    return len(run.latencies) / run.elapsed_s if run.elapsed_s else float("nan")
