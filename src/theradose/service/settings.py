"""Service settings: database URL, keys, checkpoints, site time zone, sessions, login throttling.

Default database: the SQLite file named by ``$THERADOSE_DB`` (a URL or a path), else ``./theradose.db``
in the working directory. PostgreSQL: ``postgresql://user:pass@host:port/dbname`` (driver psycopg 3).
The keys that seal the audit chain and e-signatures are never kept in the database: they come from a key
file (``$THERADOSE_KEY_FILE``) or an environment variable (``$THERADOSE_SECRET_KEY``), see
:mod:`theradose.service.keys`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from theradose.errors import InputError

if TYPE_CHECKING:
    from theradose.service.keys import KeyRing

#: Environment variable naming the database (URL or SQLite path).
DB_ENV = "THERADOSE_DB"
#: Environment variable holding a master key as text (see :mod:`theradose.service.keys`).
SECRET_ENV = "THERADOSE_SECRET_KEY"
#: Environment variable naming the key file (see :mod:`theradose.service.keys`).
KEY_FILE_ENV = "THERADOSE_KEY_FILE"
#: Environment variable naming the checkpoint file or folder (outside the database).
CHECKPOINT_ENV = "THERADOSE_CHECKPOINT"
#: Default SQLite file, relative to the working directory.
DEFAULT_DB_FILE = "theradose.db"
#: Environment variables of the site's time zone and name, and of the idle session timeout (minutes).
TIMEZONE_ENV = "THERADOSE_TIMEZONE"
SITE_NAME_ENV = "THERADOSE_SITE_NAME"
IDLE_ENV = "THERADOSE_IDLE_TIMEOUT_MIN"
#: Environment variable: folder where the service keeps files (dosimetry reviews).
DATA_ENV = "THERADOSE_DATA_DIR"
#: Environment variable: ``os.pathsep``-separated folders whose pipeline outputs may be imported by path.
PIPELINE_ROOTS_ENV = "THERADOSE_PIPELINE_ROOTS"


def _env_data_dir() -> Path | None:
    value = os.environ.get(DATA_ENV)
    return Path(value) if value else None


def _env_pipeline_roots() -> tuple[Path, ...]:
    return tuple(Path(p) for p in os.environ.get(PIPELINE_ROOTS_ENV, "").split(os.pathsep) if p)


def normalize_db_url(value: str | None) -> str:
    """Turn ``value`` (URL, SQLite path or None) into an SQLAlchemy URL.

    ``None`` → ``$THERADOSE_DB`` or ``./theradose.db``; a path → ``sqlite:///<absolute path>``;
    ``postgresql://`` and ``postgres://`` → ``postgresql+psycopg://``.
    """
    if value is None or not value.strip():
        value = os.environ.get(DB_ENV) or DEFAULT_DB_FILE
    value = value.strip()
    if value.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + value.split("://", 1)[1]
    if value.startswith(("postgresql+psycopg://", "sqlite://")):
        return value
    if "://" in value:
        raise InputError(
            f"db URL scheme not supported: {value.split('://', 1)[0]!r}: use sqlite:///path or postgresql://..."
        )
    return "sqlite:///" + str(Path(value).expanduser().resolve())


@dataclass(frozen=True)
class Settings:
    """Settings of one service instance.

    Attributes
    ----------
    db_url : str
        SQLAlchemy URL (see :func:`normalize_db_url`).
    secret_key : str or None
        A master key as text (default ``$THERADOSE_SECRET_KEY``); give this or ``key_file``.
    key_file : Path or None
        Key file with one or more master keys (default ``$THERADOSE_KEY_FILE``).
    checkpoint_path : Path or None
        File (or folder, holding ``audit-checkpoints.jsonl``) where the service appends signed checkpoints
        of the audit head (default ``$THERADOSE_CHECKPOINT``; ``None``: the service writes none, run
        ``theradose audit checkpoint`` from a scheduler instead).
    checkpoint_interval_s : float
        How often the running service writes a checkpoint when the chain has grown.
    site_timezone : str
        IANA time zone of the site (default ``$THERADOSE_TIMEZONE`` or UTC), used to show and interpret
        local times (storage is UTC).
    site_name : str
        Institution name shown on the pages and written into DICOM objects (default
        ``$THERADOSE_SITE_NAME`` or "theradose").
    required_qc : tuple of str
        QC tests that must pass before a batch is released.
    session_ttl_h : float
        Lifetime of a login token in hours.
    idle_timeout_min : float
        A login token not used for this long is refused (default 30, ``$THERADOSE_IDLE_TIMEOUT_MIN``).
    argon2_time_cost, argon2_memory_cost_kib : int
        Argon2id cost parameters for password hashes (RFC 9106 second recommended option: t=3, 64 MiB).
    password_hash_slots : int
        Password hashes computed at the same time (logins and signature re-authentications queue for a
        slot); default half the CPUs, at least 1, so hashing never takes every core from the writers.
    account_failure_limit, client_failure_limit : int
        Failed password checks within ``failure_window_s`` after which an account name (known or not) or
        a client address is locked for ``lockout_s`` (NIST SP 800-63B §5.2.2 asks for rate limiting).
    failed_login_delay_s : float
        A refused login (401, 429, 503) is answered only after this delay, without holding a thread:
        a client sending wrong passwords is slowed to about one attempt per delay and connection.
    max_body_bytes : int
        Largest request body accepted (413 beyond it).
    data_dir : Path or None
        Folder for files kept by the service (dosimetry reviews); ``None``: ``$THERADOSE_DATA_DIR``,
        else ``<sqlite file>.files`` beside an SQLite database, else ``./theradose-files``
        (see :attr:`files_dir`).
    pipeline_roots : tuple of Path
        Folders under which a pipeline output folder may be imported by its path
        (default ``$THERADOSE_PIPELINE_ROOTS``; none: only zip uploads).
    """

    db_url: str = field(default_factory=lambda: normalize_db_url(None))
    secret_key: str | None = field(default_factory=lambda: os.environ.get(SECRET_ENV) or None)
    key_file: Path | None = field(
        default_factory=lambda: Path(os.environ[KEY_FILE_ENV]) if os.environ.get(KEY_FILE_ENV) else None
    )
    checkpoint_path: Path | None = field(
        default_factory=lambda: Path(os.environ[CHECKPOINT_ENV]) if os.environ.get(CHECKPOINT_ENV) else None
    )
    checkpoint_interval_s: float = 60.0
    site_timezone: str = field(default_factory=lambda: os.environ.get(TIMEZONE_ENV) or "UTC")
    site_name: str = field(default_factory=lambda: os.environ.get(SITE_NAME_ENV) or "theradose")
    required_qc: tuple[str, ...] = ("radiochemical_purity", "ph")
    session_ttl_h: float = 12.0
    idle_timeout_min: float = field(default_factory=lambda: float(os.environ.get(IDLE_ENV) or 30.0))
    argon2_time_cost: int = 3
    argon2_memory_cost_kib: int = 65536
    password_hash_slots: int = field(default_factory=lambda: max(1, (os.cpu_count() or 2) // 2))
    account_failure_limit: int = 5
    client_failure_limit: int = 20
    failure_window_s: float = 900.0
    lockout_s: float = 900.0
    failed_login_delay_s: float = 1.0
    max_body_bytes: int = 16 * 1024 * 1024
    data_dir: Path | None = field(default_factory=_env_data_dir)
    pipeline_roots: tuple[Path, ...] = field(default_factory=_env_pipeline_roots)

    def __post_init__(self) -> None:
        object.__setattr__(self, "db_url", normalize_db_url(self.db_url))
        try:
            ZoneInfo(self.site_timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise InputError(
                f"site_timezone {self.site_timezone!r} is not an IANA time zone: e.g. Europe/Berlin"
            ) from exc
        object.__setattr__(self, "pipeline_roots", tuple(Path(p) for p in self.pipeline_roots))
        if not self.idle_timeout_min > 0:
            raise InputError(f"idle_timeout_min must be > 0; got {self.idle_timeout_min!r}")
        if not self.session_ttl_h > 0:
            raise InputError(f"session_ttl_h must be > 0; got {self.session_ttl_h!r}")
        for name in (
            "password_hash_slots",
            "account_failure_limit",
            "client_failure_limit",
            "max_body_bytes",
        ):
            if not int(getattr(self, name)) >= 1:
                raise InputError(f"{name} must be >= 1; got {getattr(self, name)!r}")
        if not 0.0 <= self.failed_login_delay_s <= 60.0:
            raise InputError(f"failed_login_delay_s must lie in 0..60; got {self.failed_login_delay_s!r}")
        for name in ("failure_window_s", "lockout_s", "checkpoint_interval_s"):
            if not float(getattr(self, name)) > 0:
                raise InputError(f"{name} must be > 0; got {getattr(self, name)!r}")

    def keyring(self) -> KeyRing:
        """The master keys (from ``key_file`` or ``secret_key``); an error naming the fix when neither."""
        from theradose.service.keys import read_key_file, ring_from_text

        if self.key_file is not None and self.secret_key:
            raise InputError(f"both a key file ({self.key_file}) and ${SECRET_ENV} are set: keep one of them")
        if self.key_file is not None:
            return read_key_file(self.key_file)
        if self.secret_key:
            return ring_from_text(self.secret_key)
        raise InputError(
            "no key to seal the audit trail and e-signatures: create one outside the database with "
            f"`theradose audit keygen --key-file PATH` and set ${KEY_FILE_ENV}=PATH "
            f"(or set ${SECRET_ENV})"
        )

    @property
    def files_dir(self) -> Path:
        """The folder for files kept by the service (see ``data_dir``)."""
        if self.data_dir is not None:
            return Path(self.data_dir)
        if self.db_url.startswith("sqlite:///"):
            return Path(self.db_url.removeprefix("sqlite:///") + ".files")
        return Path("theradose-files")

    @property
    def is_sqlite(self) -> bool:
        """True for an SQLite database."""
        return self.db_url.startswith("sqlite")
