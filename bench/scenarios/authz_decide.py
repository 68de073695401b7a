"""Authorization decisions per second in process: 10,000 grants against 1, and against a scan."""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.report import Outcome
from obp.services.iam.authz import Authorizer, Grant, compile_pattern

NAMESPACE = "bench"
GRANTS = 10_000
SEED = 7
QUERIES = 20_000
# One clock reading per this many decisions: a decision costs about a microsecond.
BATCH = 500
MEASUREMENTS = ("grants_10k", "grants_1", "linear_scan_10k")


@dataclass(frozen=True)
class Sizes:
    """How long each measurement runs."""

    rounds: int
    segment_s: float
    scan_segment_s: float
    warmup_s: float


FULL = Sizes(rounds=5, segment_s=1.5, scan_segment_s=1.5, warmup_s=0.3)
QUICK = Sizes(rounds=2, segment_s=0.3, scan_segment_s=0.3, warmup_s=0.05)


@dataclass(frozen=True)
class Query:
    """One question, and which kind of grant (if any) should answer it."""

    action: str
    resource: str
    kind: str


@dataclass
class Tally:
    """Decisions and seconds of one measurement, summed over rounds and kept per round."""

    decisions: int = 0
    allowed: int = 0
    seconds: float = 0.0
    per_round: list[float] = field(default_factory=list)

    def add(self, decisions: int, allowed: int, seconds: float) -> None:
        self.decisions += decisions
        self.allowed += allowed
        self.seconds += seconds
        self.per_round.append(decisions / seconds)

    @property
    def per_s(self) -> float:
        return self.decisions / self.seconds

    def summary(self) -> dict[str, Any]:
        return {
            "decisions": self.decisions,
            "seconds": round(self.seconds, 3),
            "decisions_per_s": round(self.per_s, 1),
            "us_per_decision": round(1e6 / self.per_s, 3),
            "allowed_fraction": round(self.allowed / self.decisions, 4),
            "decisions_per_s_rounds": [round(rate, 1) for rate in self.per_round],
        }


def make_grants(rng: random.Random) -> list[Grant]:
    """10,000 policies of one namespace, as an identity with many of them would hold.

    80 % exact (`kv.get`/`kv.set` on one to three `kv:tenant-data/<n>`), 15 % wildcard
    resources (`files.read`/`files.list` on `files:reports/<n>/*`), 5 % wildcard actions
    (`kv.*`, `*.get`, `lambda.*` on `kv:shared/<n>` or `lambda:job-<n>-*`).
    """
    grants = []
    for n in range(GRANTS):
        share = n % 20
        if share < 16:
            actions: tuple[str, ...] = ("kv.get",) if n % 2 else ("kv.get", "kv.set")
            resources = tuple(f"kv:tenant-data/{n * 3 + k}" for k in range(1 + n % 3))
        elif share < 19:
            actions = ("files.read", "files.list") if n % 2 else ("files.read",)
            resources = (f"files:reports/{n}/*",)
        elif n % 3 == 0:
            actions, resources = ("kv.*",), (f"kv:shared/{n}",)
        elif n % 3 == 1:
            actions, resources = ("*.get",), (f"kv:shared/{n}",)
        else:
            actions, resources = ("lambda.*",), (f"lambda:job-{n}-*",)
        grants.append(Grant(NAMESPACE, actions, resources))
    rng.shuffle(grants)
    return grants


def make_queries(rng: random.Random) -> list[Query]:
    """About half allowed, half denied; every kind of grant and of near miss."""
    kinds: list[tuple[str, Callable[[int], tuple[str, str]]]] = [
        # allowed
        ("exact", lambda n: ("kv.get", f"kv:tenant-data/{_exact_grant(n) * 3}")),
        ("wildcard_resource", lambda n: ("files.read", f"files:reports/{_file_grant(n)}/q3.pdf")),
        ("wildcard_action", lambda n: ("kv.delete", f"kv:shared/{_shared_grant(n, 0)}")),
        ("wildcard_action", lambda n: ("lambda.invoke", f"lambda:job-{_shared_grant(n, 2)}-x")),
        # denied
        ("denied_resource", lambda n: ("kv.get", f"kv:tenant-data/{GRANTS * 3 + n}")),
        ("denied_action", lambda n: ("kv.delete", f"kv:tenant-data/{_exact_grant(n) * 3}")),
        ("denied_resource", lambda n: ("files.read", f"files:reports/{GRANTS + n}/q3.pdf")),
        ("denied_action", lambda n: ("files.write", f"files:reports/{_file_grant(n)}/q3.pdf")),
    ]
    queries = []
    for number in range(QUERIES):
        kind, make = kinds[number % len(kinds)]
        action, resource = make(rng.randrange(GRANTS))
        queries.append(Query(action, resource, kind))
    rng.shuffle(queries)
    return queries


def _exact_grant(n: int) -> int:
    return n - n % 20 + (n % 16)  # share < 16


def _file_grant(n: int) -> int:
    return n - n % 20 + 16 + n % 3  # 16 <= share < 19


def _shared_grant(n: int, third: int) -> int:
    """A grant with share 19 and n % 3 == third."""
    while n % 20 != 19 or n % 3 != third:
        n = (n + 1) % GRANTS
    return n


class LinearScan:
    """What the index saves: every grant tried in turn, its patterns compiled in advance."""

    def __init__(self, grants: Sequence[Grant]) -> None:
        self._grants = [
            (
                grant.namespace,
                [_matcher(pattern) for pattern in grant.actions],
                [_matcher(pattern) for pattern in grant.resources],
            )
            for grant in grants
        ]

    def allows(self, *, namespace: str, action: str, resource: str) -> bool:
        for grant_namespace, actions, resources in self._grants:
            if (
                grant_namespace == namespace
                and any(matcher(action) for matcher in actions)
                and any(matcher(resource) for matcher in resources)
            ):
                return True
        return False


def _matcher(pattern: str) -> Callable[[str], bool]:
    if "*" not in pattern:
        return pattern.__eq__
    regex: re.Pattern[str] = compile_pattern(pattern)
    return lambda value: regex.match(value) is not None


Decide = Callable[..., bool]
Pair = tuple[str, str]


def _timed(
    allows: Decide, pairs: list[Pair], start_at: int, duration_s: float
) -> tuple[int, int, float]:
    """Decide pairs from `start_at` on, wrapping, until `duration_s` has passed.

    (decisions, allowed, seconds).
    """
    count = len(pairs)
    decisions = allowed = 0
    start = time.perf_counter()
    deadline = start + duration_s
    position = start_at
    while True:
        for _ in range(BATCH):
            action, resource = pairs[position]
            allowed += allows(namespace=NAMESPACE, action=action, resource=resource)
            position += 1
            if position == count:
                position = 0
        decisions += BATCH
        now = time.perf_counter()
        if now >= deadline:
            return decisions, allowed, now - start


def _timed_scan(
    scan: LinearScan, pairs: list[Pair], start_at: int, duration_s: float
) -> tuple[int, int, float, list[bool]]:
    """`_timed` for the scan, a decision at a time (each takes milliseconds), with its answers."""
    count = len(pairs)
    answers: list[bool] = []
    start = time.perf_counter()
    deadline = start + duration_s
    position = start_at
    while True:
        action, resource = pairs[position]
        answers.append(scan.allows(namespace=NAMESPACE, action=action, resource=resource))
        position = (position + 1) % count
        now = time.perf_counter()
        if now >= deadline:
            return len(answers), sum(answers), now - start, answers


def run(*, quick: bool, client: str = "raw") -> Outcome:
    """Rounds of decisions over 10,000 grants, 1 grant and a linear scan, interleaved.

    `client` is unused: no HTTP here, everything runs in this process.
    """
    sizes = QUICK if quick else FULL
    rng = random.Random(SEED)
    grants = make_grants(rng)
    queries = make_queries(rng)

    started = time.perf_counter()
    big = Authorizer(grants)
    compile_s = time.perf_counter() - started
    one = Authorizer(grants[:1])
    scan = LinearScan(grants)
    expected = [
        big.allows(namespace=NAMESPACE, action=query.action, resource=query.resource)
        for query in queries
    ]
    wrong = [
        (query.kind, answer)
        for query, answer in zip(queries, expected, strict=True)
        if answer != query.kind.startswith(("exact", "wildcard"))
    ]
    if wrong:
        raise RuntimeError(f"the index answered {len(wrong)} queries wrongly, such as {wrong[0]}")

    pairs = [(query.action, query.resource) for query in queries]
    bodies: dict[str, Decide] = {"grants_10k": big.allows, "grants_1": one.allows}
    tallies = {name: Tally() for name in MEASUREMENTS}
    positions = dict.fromkeys(MEASUREMENTS, 0)
    scan_checked = scan_mismatches = 0
    for name in bodies:
        _timed(bodies[name], pairs, 0, sizes.warmup_s)
    _timed_scan(scan, pairs, 0, sizes.warmup_s)
    for number in range(sizes.rounds):
        order = MEASUREMENTS if number % 2 == 0 else MEASUREMENTS[::-1]
        for name in order:
            start_at = positions[name]
            if name == "linear_scan_10k":
                decisions, allowed, seconds, answers = _timed_scan(
                    scan, pairs, start_at, sizes.scan_segment_s
                )
                # The scan is the reference: the index must have given the same answers.
                scan_checked += len(answers)
                scan_mismatches += sum(
                    answer != expected[(start_at + offset) % len(pairs)]
                    for offset, answer in enumerate(answers)
                )
            else:
                decisions, allowed, seconds = _timed(bodies[name], pairs, start_at, sizes.segment_s)
            tallies[name].add(decisions, allowed, seconds)
            positions[name] = (start_at + decisions) % len(pairs)
    if scan_mismatches:
        raise RuntimeError(f"the index and the linear scan disagree on {scan_mismatches} queries")

    summaries: dict[str, Any] = {name: tally.summary() for name, tally in tallies.items()}
    rate_10k = tallies["grants_10k"].per_s
    ratio = round(rate_10k / tallies["grants_1"].per_s, 4)
    summaries["grants_10k"]["compile_ms"] = round(compile_s * 1000, 1)
    summaries["index_speedup_over_scan"] = round(rate_10k / tallies["linear_scan_10k"].per_s, 1)
    summaries["scan_decisions_checked_against_index"] = scan_checked
    kinds: dict[str, int] = {}
    for query in queries:
        kinds[query.kind] = kinds.get(query.kind, 0) + 1
    return Outcome(
        parameters={
            "namespace": NAMESPACE,
            "grants": GRANTS,
            "grant_mix": "80% exact kv.get[/kv.set] on 1-3 exact kv:tenant-data/<n>; 15% "
            "files.read[/files.list] on files:reports/<n>/*; 5% kv.*, *.get or lambda.* on "
            "kv:shared/<n> or lambda:job-<n>-*",
            "queries": len(queries),
            "query_kinds": kinds,
            "query_order": f"shuffled (random.Random({SEED})), the same list for every "
            "measurement, each continuing where its previous round stopped",
            "grants_1": "Authorizer over the first of the same 10,000 grants, same queries",
            "linear_scan_10k": "every grant tried in turn until one allows (namespace, then "
            "action patterns, then resource patterns; exact ones by ==, wildcards by their "
            "precompiled regex)",
            "rounds": sizes.rounds,
            "segment_s": sizes.segment_s,
            "scan_segment_s": sizes.scan_segment_s,
            "warmup_s": sizes.warmup_s,
            "order": "each round runs grants_10k, grants_1, linear_scan_10k; every other "
            "round in reverse",
        },
        results=summaries,
        ratio=ratio,
        baseline="decisions_per_s with 10,000 grants / decisions_per_s with 1 grant, same "
        "queries and run",
    )
