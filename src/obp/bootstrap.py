"""The composition root: settings -> adapters -> services. The only place that wires them."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from secrets import token_urlsafe
from urllib.parse import urlsplit

import sqlalchemy as sa
import structlog

from obp.adapters import migrate
from obp.adapters.db import Database
from obp.adapters.outbox import OutboxRelay
from obp.adapters.registry import (
    BLOBS,
    BUSES,
    CACHES,
    DATABASES,
    IN_PROCESS_SCHEMES,
    KEYSTORES,
)
from obp.kernel.errors import ConfigurationError, Sealed
from obp.kernel.names import GLOBAL_NAMESPACE
from obp.kernel.periodic import Periodic
from obp.kernel.ports import BlobStore, Bus, Cache, EventHandler, KeyStore, Probe
from obp.services.audit import AuditService
from obp.services.files import FileService
from obp.services.iam import (
    AccessControl,
    AuthService,
    IamService,
    IdentityService,
    LoginThrottle,
    PasswordHasher,
    Ref,
    TokenIssuer,
    TokenSettings,
    TokenVerifier,
)
from obp.services.kv import KvService
from obp.services.namespaces import NamespaceService
from obp.services.secrets import SecretService
from obp.services.vault import VaultAdmin, VaultService
from obp.settings import Settings

log = structlog.get_logger("obp.bootstrap")


def all_tables_metadata() -> sa.MetaData:
    """The metadata with every context's tables registered (for Alembic autogenerate)."""
    import obp.services.audit.tables
    import obp.services.files.tables
    import obp.services.iam.tables
    import obp.services.kv.tables
    import obp.services.namespaces.tables
    import obp.services.secrets.tables
    import obp.services.vault.tables  # noqa: F401  (each registers its tables)
    from obp.kernel.tables import metadata

    return metadata


def check_settings(settings: Settings) -> None:
    """Refuse combinations that cannot work, naming the settings to change."""
    in_process = [
        name
        for name, url in (("OBP_CACHE_URL", settings.cache_url), ("OBP_BUS_URL", settings.bus_url))
        if urlsplit(url).scheme in IN_PROCESS_SCHEMES
    ]
    if settings.workers > 1 and in_process:
        raise ConfigurationError(
            f"--workers {settings.workers} needs shared backends, but {', '.join(in_process)} "
            "point at in-process ones (memory://): set them to redis:// and amqp:// "
            "(and OBP_DATABASE_URL to postgresql+asyncpg://), or run one worker"
        )
    if settings.workers > 1 and settings.database_url.startswith("sqlite"):
        raise ConfigurationError(
            f"--workers {settings.workers} needs a shared database: set OBP_DATABASE_URL to "
            "postgresql+asyncpg://..., or run one worker on SQLite"
        )
    for registry, url in (
        (DATABASES, settings.database_url),
        (CACHES, settings.cache_url),
        (BUSES, settings.bus_url),
        (KEYSTORES, settings.keystore_url),
    ):
        registry.factory(url)


async def preflight(settings: Settings) -> None:
    """Checks `obp serve` runs once before starting workers, so a bad setup fails in one line.

    A file key store is opened read-only here (a sealed one is fine: the platform starts
    sealed); an HSM is not, because its library must not be loaded before workers fork.
    """
    keystore: KeyStore = KEYSTORES.create(settings.keystore_url, data_dir=settings.data_dir)
    if keystore.backend != "file":
        return
    try:
        await keystore.open(create=False)
    except Sealed:
        pass
    finally:
        await keystore.close()


@dataclass
class Platform:
    """Every adapter and service of one process, started and stopped together."""

    settings: Settings
    database: Database
    cache: Cache
    bus: Bus
    relay: OutboxRelay
    namespaces: NamespaceService
    vault: VaultService
    vault_admin: VaultAdmin
    secrets: SecretService
    kv: KvService
    iam: IamService
    identities: IdentityService
    access: AccessControl
    audit: AuditService
    auth: AuthService
    hasher: PasswordHasher
    issuer: TokenIssuer
    verifier: TokenVerifier
    blobs: BlobStore
    files: FileService
    background: list[Periodic] = field(default_factory=list)

    @property
    def probes(self) -> dict[str, Probe]:
        """The backends `/readyz` checks, by port name."""
        return {
            "database": self.database,
            "cache": self.cache,
            "bus": self.bus,
            "vault": self.vault,
            "blobs": self.blobs,
        }

    async def stop(self) -> None:
        """Stop background work and close every backend connection, the database last."""
        for job in self.background:
            await job.stop()
        await self.relay.stop()
        await self.audit.flush()
        for name, close in (
            ("blobs", self.blobs.close),
            ("bus", self.bus.close),
            ("cache", self.cache.close),
            ("vault", self.vault.close),
        ):
            try:
                await close()
            except Exception:
                log.warning("closing a backend failed", backend=name, exc_info=True)
        await self.database.close()


async def start_platform(settings: Settings) -> Platform:
    """Connect the backends the settings name, migrate the schema and start the relay."""
    check_settings(settings)
    async with contextlib.AsyncExitStack() as undo:
        database: Database = DATABASES.create(settings.database_url)
        undo.push_async_callback(database.close)
        if settings.migrate_on_start:
            await migrate.upgrade(database)
        cache: Cache = CACHES.create(settings.cache_url)
        undo.push_async_callback(cache.close)
        bus: Bus = BUSES.create(settings.bus_url)
        await bus.start()
        undo.push_async_callback(bus.close)
        keystore: KeyStore = KEYSTORES.create(settings.keystore_url, data_dir=settings.data_dir)
        undo.push_async_callback(keystore.close)
        blobs: BlobStore = BLOBS.create(settings.blob_url or "file://", data_dir=settings.data_dir)
        await blobs.start()
        undo.push_async_callback(blobs.close)
        platform = await _services(settings, database, cache, bus, keystore, blobs)
        await _subscribe(platform)
        await platform.relay.start()
        await _start_background(platform)
        undo.pop_all()
    generated = await ensure_admin(platform)
    if generated is not None:
        print_admin_password(settings.admin_login, generated)
    log.info(
        "platform started",
        database=database.backend,
        cache=cache.backend,
        bus=bus.backend,
        roles=settings.roles,
    )
    return platform


async def _services(
    settings: Settings,
    database: Database,
    cache: Cache,
    bus: Bus,
    keystore: KeyStore,
    blobs: BlobStore,
) -> Platform:
    uow = database.unit_of_work
    vault = VaultService(unit_of_work=uow, keystore=keystore)
    # A vault that cannot open its key store starts sealed; the platform still starts.
    await vault.start()
    token_settings = TokenSettings(
        issuer_for=lambda namespace: f"{settings.public_url}/api/v1/namespaces/{namespace}",
        lifetime_seconds=settings.access_token_lifetime_seconds,
    )
    verifier = TokenVerifier(vault, token_settings)
    audit = AuditService(unit_of_work=uow)
    access = AccessControl(unit_of_work=uow, verifier=verifier, cache=cache, audit=audit)
    audit.bind(access)
    namespaces = NamespaceService(unit_of_work=uow, access=access)
    access.bind(namespaces.created_at)
    identities = IdentityService(
        unit_of_work=uow, namespaces=namespaces, access=access, cache=cache
    )
    iam = IamService(unit_of_work=uow, namespaces=namespaces, access=access)
    await iam.ensure_root_policy(namespace=GLOBAL_NAMESPACE)
    relay = OutboxRelay(database, bus, poll_seconds=settings.outbox_poll_seconds)
    database.add_commit_listener(relay.notify)
    database.add_commit_listener(access.committed)
    hasher = PasswordHasher()
    issuer = TokenIssuer(vault, token_settings)
    auth = AuthService(
        unit_of_work=uow,
        identities=identities,
        hasher=hasher,
        throttle=LoginThrottle(cache),
        issuer=issuer,
        namespaces=namespaces,
        access=access,
        keys=vault,
        token_settings=token_settings,
        audit=audit,
        refresh_lifetime=timedelta(days=settings.refresh_token_lifetime_days),
    )
    files = FileService(
        unit_of_work=uow,
        blobs=blobs,
        namespaces=namespaces,
        access=access,
        max_file_bytes=settings.max_file_bytes,
        lease_seconds=settings.files_upload_lease_seconds,
    )
    namespaces.add_usage_source("files", files)
    kv = KvService(
        unit_of_work=uow,
        namespaces=namespaces,
        access=access,
        cache=cache,
        cache_ttl=settings.kv_cache_ttl,
        max_value_bytes=settings.kv_max_value_bytes,
    )
    namespaces.add_usage_source("kv", kv)
    return Platform(
        settings=settings,
        database=database,
        cache=cache,
        bus=bus,
        relay=relay,
        namespaces=namespaces,
        vault=vault,
        vault_admin=VaultAdmin(vault=vault, namespaces=namespaces, access=access),
        secrets=SecretService(unit_of_work=uow, vault=vault, namespaces=namespaces, access=access),
        kv=kv,
        iam=iam,
        identities=identities,
        access=access,
        audit=audit,
        auth=auth,
        hasher=hasher,
        issuer=issuer,
        verifier=verifier,
        blobs=blobs,
        files=files,
    )


async def _start_background(platform: Platform) -> None:
    """Start the periodic jobs of a worker replica."""
    settings = platform.settings
    if "worker" not in settings.roles:
        return
    if platform.database.backend == "sqlite":
        # This process is the only one: an upload pending at start has no uploader left.
        await platform.files.sweep(everything=True)
    platform.background.append(
        Periodic("files.sweep", platform.files.sweep, interval=settings.files_upload_lease_seconds)
    )
    # Expired values and old tombstones: every worker sweeps, in small batches.
    platform.background.append(
        Periodic("kv.sweep", platform.kv.sweep_expired, interval=min(60.0, settings.kv_cache_ttl))
    )
    for job in platform.background:
        job.start()


# (named queue, routing pattern, handler) of the jobs one worker among all replicas does.
WORKER_JOBS: tuple[tuple[str, str, Callable[[Platform], EventHandler]], ...] = (
    ("obp.vault.purge", "*.namespace.deleted", lambda p: p.vault.purge_namespace),
    ("obp.secrets.purge", "*.namespace.deleted", lambda p: p.secrets.purge_namespace),
    ("obp.kv.purge", "*.namespace.deleted", lambda p: p.kv.purge_namespace),
    ("obp.iam.purge", "*.namespace.deleted", lambda p: p.iam.purge_namespace),
    ("obp.iam.root-policy", "*.namespace.created", lambda p: p.iam.on_namespace_created),
    ("obp.audit.purge", "*.namespace.deleted", lambda p: p.audit.purge_namespace),
    ("obp.files.purge", "*.namespace.deleted", lambda p: p.files.purge_namespace),
)


async def _subscribe(platform: Platform) -> None:
    """Wire the events; before the relay starts, since RabbitMQ drops what no queue is bound to."""
    bus = platform.bus
    # Every replica drops what it cached about keys and access that changed.
    await bus.subscribe(
        patterns=["*.namespace.deleted", "*.vault.data_key_rotated", "*.vault.signing_key_rotated"],
        handler=platform.vault.forget,
    )
    await bus.subscribe(
        patterns=["*.namespace.deleted", "*.vault.signing_key_rotated"],
        handler=platform.verifier.forget,
    )
    await bus.subscribe(
        patterns=["*.iam.changed", "*.namespace.deleted"], handler=platform.access.forget
    )
    await bus.subscribe(patterns=["*.kv.changed"], handler=platform.kv.forget)
    if "worker" not in platform.settings.roles:
        return
    # One worker among all replicas does each of these.
    for queue, pattern, handler_of in WORKER_JOBS:
        await bus.subscribe(patterns=[pattern], handler=handler_of(platform), queue=queue)


async def ensure_admin(platform: Platform) -> str | None:
    """Create the first global admin if missing; the generated password, if one was made."""
    settings = platform.settings
    existing = await platform.identities.identity_by_name(
        namespace=GLOBAL_NAMESPACE, name=settings.admin_login
    )
    if existing is not None:
        return None
    given = settings.admin_password
    password = given.get_secret_value() if given is not None else token_urlsafe(18)
    root = await platform.iam.ensure_root_policy(namespace=GLOBAL_NAMESPACE)
    created = await platform.identities.create_first(
        namespace=GLOBAL_NAMESPACE,
        name=settings.admin_login,
        policies=[Ref(GLOBAL_NAMESPACE, root.id)],
        password_hash=await platform.hasher.hash(password),
    )
    if created is None or given is not None:
        return None
    return password


def print_admin_password(login: str, password: str) -> None:
    """Show a generated admin password once, on the terminal only (never in the logs)."""
    print(
        f"Created the global admin {login!r} with password {password!r}: it is shown only "
        "now. Log in with `obp login`, then change it.",
        file=sys.stderr,
        flush=True,
    )
