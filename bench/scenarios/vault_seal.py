"""Vault seal+unseal per second against raw AES-256-GCM, on the file and PKCS#11 key stores."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bench.report import Outcome
from obp.adapters import migrate
from obp.adapters.db import Database, create_database
from obp.adapters.keystore_file import FileKeyStore
from obp.kernel.ports import KeyStore
from obp.services.vault.service import VaultService

PLAINTEXT = bytes(range(256)) * 4  # 1 KiB
AAD = b"bench:vault_seal"
WARM_NAMESPACE = "bench-warm"
# cache_size=1 and more namespaces than that: every op misses the data key cache.
COLD_NAMESPACES = 50
COLD_CACHE_SIZE = 1
# What a data key is to the key store: 32 bytes, bound to (namespace, key id) by the aad.
DATA_KEY = bytes(32)
DATA_KEY_AAD = b"obp-data-key\x00bench\x0000000000-0000-0000-0000-000000000000"
# Raw AES-GCM is ~1000x faster than one event-loop hop: look at the clock every this many ops.
RAW_BATCH = 64
HSM_LABEL = "obp-bench"
SOFTHSM_TOOL = "softhsm2-util"
SOFTHSM_LIBRARIES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)
MEASUREMENTS = ("raw_aesgcm", "warm", "cold", "keystore_wrap_unwrap")


@dataclass(frozen=True)
class Sizes:
    """How long each measurement runs."""

    rounds: int
    segment_s: float
    warmup_s: float


FULL = Sizes(rounds=5, segment_s=1.0, warmup_s=0.25)
QUICK = Sizes(rounds=2, segment_s=0.2, warmup_s=0.05)


@dataclass
class Tally:
    """Ops and seconds of one measurement, summed over rounds and kept per round."""

    ops: int = 0
    seconds: float = 0.0
    per_round: list[float] = field(default_factory=list)

    def add(self, ops: int, seconds: float) -> None:
        self.ops += ops
        self.seconds += seconds
        self.per_round.append(ops / seconds)

    @property
    def per_s(self) -> float:
        return self.ops / self.seconds

    def summary(self) -> dict[str, Any]:
        return {
            "ops": self.ops,
            "seconds": round(self.seconds, 3),
            "ops_per_s": round(self.per_s, 1),
            "us_per_op": round(1e6 / self.per_s, 2),
            "ops_per_s_rounds": [round(rate, 1) for rate in self.per_round],
        }


def run(*, quick: bool, client: str = "raw") -> Outcome:
    """Seal+unseal through VaultService on each key store, rounds interleaved with raw AES-GCM.

    `client` is unused: no HTTP here, everything runs in this process.
    """
    sizes = QUICK if quick else FULL
    results: dict[str, Any] = {}
    notes: list[str] = []
    # structlog prints to stdout by default; the runner's JSON document owns stdout.
    with (
        tempfile.TemporaryDirectory(prefix="obp-bench-") as tmp,
        contextlib.redirect_stdout(sys.stderr),
    ):
        workdir = Path(tmp)
        print("vault_seal: file key store", file=sys.stderr)
        file_dir = workdir / "file"
        file_dir.mkdir()
        results["file"] = asyncio.run(
            _measure(file_dir, FileKeyStore(file_dir / "master.key"), sizes)
        )
        results["pkcs11"] = _pkcs11_or_skip(workdir / "pkcs11", sizes)
    if "skipped" in results["pkcs11"]:
        notes.append(f"pkcs11 skipped: {results['pkcs11']['skipped']}")
    return Outcome(
        parameters={
            "plaintext_bytes": len(PLAINTEXT),
            "aad_bytes": len(AAD),
            "op": "vault.seal then vault.unseal of its result (one namespace per op)",
            "raw_baseline": "cryptography AESGCM encrypt+decrypt of the same 1 KiB and aad, "
            "random 96-bit nonce, cipher object reused",
            "database": "SQLite (obp.adapters.db defaults: WAL, synchronous=FULL), migrated, "
            "in a temporary directory, one per key store",
            "rounds": sizes.rounds,
            "segment_s": sizes.segment_s,
            "warmup_s": sizes.warmup_s,
            "order": "each round runs raw_aesgcm, warm, cold, keystore_wrap_unwrap; "
            "every other round in reverse",
            "warm": f"VaultService(cache_size=10000), namespace {WARM_NAMESPACE!r}, "
            "data key cached",
            "cold": f"VaultService(cache_size={COLD_CACHE_SIZE}), {COLD_NAMESPACES} "
            "namespaces in turn: each op reads its data key row and unwraps it in the key store",
            "keystore_wrap_unwrap": "KeyStore.wrap then KeyStore.unwrap of a 32-byte key, "
            "called directly",
            "pkcs11_token": f"SoftHSM2, token {HSM_LABEL!r} initialised in a temporary "
            "directory (SOFTHSM2_CONF)",
        },
        results=results,
        ratio=results["file"]["warm"]["ratio"],
        baseline="vault_ops_per_s / raw_ops_per_s, file key store, warm (data key cached); "
        "results hold every key store and regime",
        notes=notes,
    )


async def _measure(directory: Path, keystore: KeyStore, sizes: Sizes) -> dict[str, Any]:
    """Every measurement for one key store, on a fresh migrated SQLite database."""
    database = create_database(f"sqlite+aiosqlite:///{directory / 'obp.db'}")
    try:
        await migrate.upgrade(database)
        warm = await _started(database, keystore, cache_size=10_000)
        cold = await _started(database, keystore, cache_size=COLD_CACHE_SIZE)
        cold_namespaces = [f"bench-cold-{n:02d}" for n in range(COLD_NAMESPACES)]
        for namespace in [WARM_NAMESPACE, *cold_namespaces]:  # first seal creates the data key
            await warm.seal(namespace=namespace, plaintext=PLAINTEXT, aad=AAD)
        unwraps_per_op = await _count_cold_unwraps(database, keystore, cold_namespaces)
        bodies = {
            "raw_aesgcm": _raw_aesgcm(),
            "warm": _vault_ops(warm, [WARM_NAMESPACE]),
            "cold": _vault_ops(cold, cold_namespaces),
            "keystore_wrap_unwrap": _keystore_ops(keystore),
        }
        tallies = {name: Tally() for name in MEASUREMENTS}
        for name in MEASUREMENTS:
            await _timed(bodies[name], sizes.warmup_s)
        for number in range(sizes.rounds):
            order = MEASUREMENTS if number % 2 == 0 else MEASUREMENTS[::-1]
            for name in order:
                tallies[name].add(*await _timed(bodies[name], sizes.segment_s))
    finally:
        # Not VaultService.close(): both services share the store; close it once.
        await keystore.close()
        await database.close()
    raw = tallies["raw_aesgcm"].per_s
    summaries: dict[str, Any] = {name: tally.summary() for name, tally in tallies.items()}
    summaries["warm"]["ratio"] = round(tallies["warm"].per_s / raw, 4)
    summaries["cold"]["ratio"] = round(tallies["cold"].per_s / raw, 4)
    summaries["cold"]["namespaces"] = COLD_NAMESPACES
    summaries["cold"]["keystore_unwraps_per_op"] = unwraps_per_op
    summaries["cold_vs_warm"] = round(tallies["cold"].per_s / tallies["warm"].per_s, 4)
    summaries["keystore"] = keystore.backend
    return summaries


async def _started(database: Database, keystore: KeyStore, *, cache_size: int) -> VaultService:
    vault = VaultService(
        unit_of_work=database.unit_of_work, keystore=keystore, cache_size=cache_size
    )
    await vault.start()
    if vault.status.sealed:
        raise RuntimeError(f"the vault did not open: {vault.status.reason}")
    return vault


async def _count_cold_unwraps(
    database: Database, keystore: KeyStore, namespaces: list[str]
) -> float:
    """Key store unwraps per cold op, on a separate service (the timed one calls the store bare).

    The seal misses the cache and unwraps; the unseal right after finds that key cached.
    """
    counting = _CountingKeyStore(keystore)
    vault = await _started(database, counting, cache_size=COLD_CACHE_SIZE)
    ops = 2 * len(namespaces)
    op = _vault_ops(vault, namespaces)
    for _ in range(ops):
        await op()
    return counting.unwraps / ops


def _raw_aesgcm() -> Callable[[], Awaitable[int]]:
    cipher = AESGCM(AESGCM.generate_key(bit_length=256))

    async def batch() -> int:
        for _ in range(RAW_BATCH):
            nonce = os.urandom(12)
            cipher.decrypt(nonce, cipher.encrypt(nonce, PLAINTEXT, AAD), AAD)
        return RAW_BATCH

    return batch


def _vault_ops(vault: VaultService, namespaces: list[str]) -> Callable[[], Awaitable[int]]:
    turn = _cycle(namespaces)

    async def op() -> int:
        namespace = next(turn)
        sealed = await vault.seal(namespace=namespace, plaintext=PLAINTEXT, aad=AAD)
        opened = await vault.unseal(namespace=namespace, sealed=sealed, aad=AAD)
        if len(opened) != len(PLAINTEXT):
            raise RuntimeError("vault.unseal returned something else than was sealed")
        return 1

    return op


def _keystore_ops(keystore: KeyStore) -> Callable[[], Awaitable[int]]:
    async def op() -> int:
        version, wrapped = await keystore.wrap(DATA_KEY, aad=DATA_KEY_AAD)
        await keystore.unwrap(version, wrapped, aad=DATA_KEY_AAD)
        return 1

    return op


def _cycle(items: list[str]) -> Iterator[str]:
    while True:
        yield from items


async def _timed(body: Callable[[], Awaitable[int]], duration_s: float) -> tuple[int, float]:
    """Call `body` until `duration_s` has passed: (ops done, seconds taken)."""
    ops = 0
    start = time.perf_counter()
    deadline = start + duration_s
    while True:
        ops += await body()
        now = time.perf_counter()
        if now >= deadline:
            return ops, now - start


class _CountingKeyStore:
    """A key store that counts unwraps and hands every call on."""

    def __init__(self, inner: KeyStore) -> None:
        self._inner = inner
        self.unwraps = 0

    @property
    def backend(self) -> str:
        return self._inner.backend

    @property
    def current_version(self) -> str:
        return self._inner.current_version

    async def open(self, *, create: bool) -> None:
        await self._inner.open(create=create)

    async def ping(self) -> None:
        await self._inner.ping()

    async def versions(self) -> list[str]:
        return await self._inner.versions()

    async def wrap(self, key: bytes, *, aad: bytes) -> tuple[str, bytes]:
        return await self._inner.wrap(key, aad=aad)

    async def unwrap(self, version: str, wrapped: bytes, *, aad: bytes) -> bytes:
        self.unwraps += 1
        return await self._inner.unwrap(version, wrapped, aad=aad)

    async def rotate(self) -> str:
        return await self._inner.rotate()

    async def destroy(self, version: str) -> None:
        await self._inner.destroy(version)

    async def close(self) -> None:
        pass  # the inner store is shared: its owner closes it


def _pkcs11_or_skip(directory: Path, sizes: Sizes) -> dict[str, Any]:
    """The PKCS#11 measurements on a fresh SoftHSM2 token, or why they were skipped."""
    # Not on PATH when PATH is minimal: Debian installs it in /usr/bin.
    tool = shutil.which(SOFTHSM_TOOL) or shutil.which(SOFTHSM_TOOL, path="/usr/bin:/usr/local/bin")
    library = next((path for path in SOFTHSM_LIBRARIES if Path(path).exists()), None)
    if tool is None:
        return {"skipped": f"{SOFTHSM_TOOL} is not installed (Debian package softhsm2)"}
    if library is None:
        return {"skipped": f"libsofthsm2.so is in none of {', '.join(SOFTHSM_LIBRARIES)}"}
    try:
        from obp.adapters.keystore_pkcs11 import Pkcs11KeyStore
    except ImportError as exc:
        return {"skipped": f"python-pkcs11 cannot be imported ({exc})"}
    directory.mkdir(parents=True)
    tokens = directory / "tokens"
    tokens.mkdir(mode=0o700)
    conf = directory / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokens}\n"
        "objectstore.backend = file\n"
        "log.level = ERROR\n"
        "slots.removable = false\n"
    )
    pin, so_pin = secrets.token_hex(8), secrets.token_hex(8)
    previous = os.environ.get("SOFTHSM2_CONF")
    # The library reads SOFTHSM2_CONF when it is loaded; the key store loads it at open.
    os.environ["SOFTHSM2_CONF"] = str(conf)
    try:
        init = [tool, "--init-token", "--free", "--label", HSM_LABEL, "--pin", pin]
        done = subprocess.run(
            [*init, "--so-pin", so_pin],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            reason = (done.stderr or done.stdout).strip() or f"exit status {done.returncode}"
            return {"skipped": f"{SOFTHSM_TOOL} --init-token failed: {reason}"}
        print("vault_seal: PKCS#11 key store (SoftHSM2)", file=sys.stderr)
        (directory / "data").mkdir()
        result = asyncio.run(
            _measure(directory / "data", Pkcs11KeyStore(library, HSM_LABEL, pin), sizes)
        )
        result["library"] = library
        return result
    finally:
        if previous is None:
            os.environ.pop("SOFTHSM2_CONF", None)
        else:
            os.environ["SOFTHSM2_CONF"] = previous
