"""An authenticated `GET /api/v1/namespaces/{ns}` against the same GET on the same kind of server
with authentication and authorization switched off (`bench.apps.unauthenticated_app`)."""

from __future__ import annotations

import contextlib
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from bench.connections import ClientKind
from bench.iam import bearer, create_namespace
from bench.load import Limits, LoadGenerator, LoadResult, Workload, summarize
from bench.report import Outcome
from bench.server import BenchServer

NAMESPACE = "bench-get"
PATH = f"/api/v1/namespaces/{NAMESPACE}"
UNAUTHENTICATED_COMMAND = [sys.executable, "-m", "bench.apps"]
# Before measuring: auth is enforced on one server, and switched off on the other.
EXPECTED_CHECKS = {"auth_without_token": 401, "auth_with_token": 200, "noauth_without_token": 200}


def run(*, quick: bool, client: ClientKind = "httpx") -> Outcome:
    """Interleave rounds against both servers under the same load; compare rates and CPU."""
    # More, shorter rounds than namespace_get: the difference sought is ~5% of the GET's CPU.
    rounds = 2 if quick else 6
    duration_s = 2.0 if quick else 4.0
    concurrency = 16
    warmup = concurrency * (10 if quick else 20)
    with tempfile.TemporaryDirectory(prefix="obp-bench-") as tmp, contextlib.ExitStack() as stack:
        auth = BenchServer(Path(tmp) / "auth")
        noauth = BenchServer(Path(tmp) / "noauth", command=UNAUTHENTICATED_COMMAND)
        servers = {"auth": auth, "noauth": noauth}
        for server in servers.values():
            stack.callback(server.stop)  # a no-op for a server that did not start
        with ThreadPoolExecutor(max_workers=len(servers)) as pool:
            list(pool.map(BenchServer.start, servers.values()))  # both at once: less waiting
        token = auth.admin_token()
        create_namespace(auth, NAMESPACE, token=token)
        create_namespace(noauth, NAMESPACE, token=None)
        checks = {
            "auth_without_token": httpx.get(f"{auth.url}{PATH}").status_code,
            "auth_with_token": httpx.get(
                f"{auth.url}{PATH}", headers=dict(bearer(token))
            ).status_code,
            "noauth_without_token": httpx.get(f"{noauth.url}{PATH}").status_code,
        }
        if checks != EXPECTED_CHECKS:
            raise RuntimeError(f"the servers do not behave as compared: {checks}")
        # The very same request bytes to both: the unauthenticated app ignores the header.
        workloads = {
            name: Workload(server.url, paths=(PATH,), headers=bearer(token))
            for name, server in servers.items()
        }
        limits = {
            name: Limits(
                concurrency,
                duration_s=duration_s,
                warmup_requests=warmup,
                watch_pids=server.pids(),
                client=client,
            )
            for name, server in servers.items()
        }
        runs: dict[str, list[LoadResult]] = {name: [] for name in workloads}
        with LoadGenerator() as load:
            for number in range(rounds):
                # auth, noauth; noauth, auth; ...: drift in machine load hits both sides alike.
                order = ["auth", "noauth"] if number % 2 == 0 else ["noauth", "auth"]
                for name in order:
                    print(f"auth_get: round {number + 1} {name}", file=sys.stderr)
                    runs[name].append(load.run(workloads[name], limits[name]))
    authed = summarize(runs["auth"])
    unauthed = summarize(runs["noauth"])
    per_round = [
        round(_rate(a) / _rate(n), 3) for a, n in zip(runs["auth"], runs["noauth"], strict=True)
    ]
    auth_cpu = authed["server_cpu_ms_per_request"]
    noauth_cpu = unauthed["server_cpu_ms_per_request"]
    notes = []
    client_cpu = unauthed["client_cpu_ms_per_request"]
    if client_cpu and noauth_cpu and client_cpu > noauth_cpu:
        notes.append(
            f"the load generator spent more CPU per request ({client_cpu} ms) than the "
            f"unauthenticated server ({noauth_cpu} ms): the ratio understates the cost of "
            "auth; see server_cpu_us_per_request"
        )
    for name, summary in (("auth", authed), ("noauth", unauthed)):
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
            "path": PATH,
            "auth": "obp serve, defaults (SQLite, 1 worker, log level info); the global admin's "
            "access token (ES256) in Authorization: Bearer",
            "noauth": "bench.apps.unauthenticated_app served by `obp serve`'s code path (same "
            "settings, Granian options, SQLite, data): get_principal overridden to a fixed "
            "admin, AccessControl.require a no-op; the same Authorization header is sent and "
            "ignored",
            "sanity_checks": checks,
        },
        results={
            "auth": authed,
            "noauth": unauthed,
            "ratio_per_round": per_round,
            "server_cpu_us_per_request": {
                "auth": _us(auth_cpu),
                "noauth": _us(noauth_cpu),
                # What verifying the token and authorizing the request cost the server.
                "verify_and_authorize": (
                    round((auth_cpu - noauth_cpu) * 1000, 1) if auth_cpu and noauth_cpu else None
                ),
                "auth_per_round": [_cpu_us(a) for a in runs["auth"]],
                "noauth_per_round": [_cpu_us(n) for n in runs["noauth"]],
                # The difference round by round: its spread shows how much is noise.
                "verify_and_authorize_per_round": [
                    _cpu_difference_us(a, n)
                    for a, n in zip(runs["auth"], runs["noauth"], strict=True)
                ],
            },
            "server_cpu_ratio": (
                round(noauth_cpu / auth_cpu, 3) if auth_cpu and noauth_cpu else None
            ),
        },
        ratio=round(authed["rps"] / unauthed["rps"], 3) if unauthed["rps"] else None,
        baseline="auth_rps / noauth_rps (the same GET, auth switched off, same run, same load)",
    )


def _cpu_us(run: LoadResult) -> float | None:
    """Server CPU per request of one run, in µs."""
    if run.server_cpu_s is None or not run.latencies:
        return None
    return round(run.server_cpu_s / len(run.latencies) * 1e6, 1)


def _cpu_difference_us(auth: LoadResult, noauth: LoadResult) -> float | None:
    a, n = _cpu_us(auth), _cpu_us(noauth)
    return round(a - n, 1) if a is not None and n is not None else None


def _us(ms: float | None) -> float | None:
    return round(ms * 1000, 1) if ms is not None else None


def _rate(run: LoadResult) -> float:
    return len(run.latencies) / run.elapsed_s if run.elapsed_s else float("nan")
