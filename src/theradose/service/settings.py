"""Service settings: database URL, secret key, site time zone, session lifetime, password hashing cost.

Default database: the SQLite file named by ``$THERADOSE_DB`` (a URL or a path), else ``./theradose.db``
in the working directory. PostgreSQL: ``postgresql://user:pass@host:port/dbname`` (driver psycopg 3).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from theradose.errors import InputError

#: Environment variable naming the database (URL or SQLite path).
DB_ENV = "THERADOSE_DB"
#: Environment variable holding the secret key that seals e-signatures (else one is kept in the DB).
SECRET_ENV = "THERADOSE_SECRET_KEY"
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
        Key sealing e-signatures; ``None`` uses the random key created in the database at migration.
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
    site_timezone: str = field(default_factory=lambda: os.environ.get(TIMEZONE_ENV) or "UTC")
    site_name: str = field(default_factory=lambda: os.environ.get(SITE_NAME_ENV) or "theradose")
    required_qc: tuple[str, ...] = ("radiochemical_purity", "ph")
    session_ttl_h: float = 12.0
    idle_timeout_min: float = field(default_factory=lambda: float(os.environ.get(IDLE_ENV) or 30.0))
    argon2_time_cost: int = 3
    argon2_memory_cost_kib: int = 65536
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
