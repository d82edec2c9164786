"""Where the configuration comes from.

Database URL precedence: ``--database`` > ``GOBILLER_DATABASE`` > ``gobiller.toml``
(current folder, then the user config folder, then ``/etc/gobiller/config.toml``)
> a SQLite file in the user data folder.

Everything is checked when it is read: a file that is not TOML, a table or key this
version does not know (a typo would otherwise fall back to a default silently), a value
of the wrong type, an SMTP or database URL GoBiller cannot use all raise
``ConfigError``, which every command reports in one line with exit 78 (EX_CONFIG).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import idna
import platformdirs

APP_NAME = "gobiller"
ENV_DATABASE = "GOBILLER_DATABASE"
ENV_SMTP = "GOBILLER_SMTP_URL"
SMTP_SECURITY = ("starttls", "tls", "none")
SYSTEM_CONFIG = Path("/etc/gobiller/config.toml")
#: The tables a config file may hold and their keys (``None``: any key, ``[keys]`` maps
#: binding ids, which the staff app checks).
CONFIG_TABLES: dict[str, frozenset[str] | None] = {
    "database": frozenset({"url"}),
    "smtp": frozenset({"host", "port", "security", "username", "password", "connections"}),
    "mail": frozenset({"maildir"}),
    "keys": None,
}
DATABASE_SCHEMES = ("sqlite", "postgresql", "postgres")
#: SMTP connections delivery holds open at once (``[smtp] connections``, ``?connections=``).
SMTP_CONNECTIONS = 4
#: The most a configuration may ask for: a mail server limits connections per client.
SMTP_CONNECTIONS_MAX = 32


class ConfigError(ValueError):
    """A configuration file that cannot be read or has the wrong shape."""


def data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME))


def config_candidates(cwd: Path | None = None) -> list[Path]:
    cwd = cwd or Path.cwd()
    return [
        cwd / "gobiller.toml",
        Path(platformdirs.user_config_dir(APP_NAME)) / "gobiller.toml",
        SYSTEM_CONFIG,
    ]


@dataclass(frozen=True)
class SmtpConfig:
    """Where mail goes when SMTP is configured. The password lives only here, never in the DB."""

    host: str
    port: int
    security: str = "starttls"
    username: str = ""
    password: str = field(default="", repr=False)
    timeout: float = 30.0
    #: How many SMTP sessions delivery holds open at once, each reused for many messages
    #: (``rules.mail.delivery``): 1 to ``SMTP_CONNECTIONS_MAX``.
    connections: int = SMTP_CONNECTIONS

    def shown(self) -> str:
        """What ``gobiller config`` says of it (never the password)."""
        user = f"{self.username}@" if self.username else ""
        return (
            f"smtp://{user}{self.host}:{self.port} ({self.security}, "
            f"{self.connections} connection{'s' if self.connections != 1 else ''})"
        )


def smtp_host(host: str, source: str) -> str:
    """The mail server's name as DNS and TLS get it: an internationalised name as its
    A-label (IDNA 2008 with the UTS #46 mapping, RFC 5891), never left to Python's socket
    and ssl modules, which would encode it with IDNA 2003 (``straße`` becomes ``strasse``,
    another domain). Raises ``ConfigError`` for a name with no A-label."""
    if host.isascii():
        return host
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise ConfigError(
            f"{source}: SMTP host {host!r} is not a valid domain name: {exc}"
        ) from exc


def smtp_connections(value: object, source: str) -> int:
    """The ``connections`` setting as a number from 1 to ``SMTP_CONNECTIONS_MAX``; raises
    ``ConfigError`` naming ``source`` for anything else."""
    text = value.strip() if isinstance(value, str) else ""
    if text.isascii() and text.isdecimal():  # not "²" (isdigit) nor "١" (int() takes it)
        value = int(text)
    if isinstance(value, bool) or not isinstance(value, int):
        value = 0
    if not 1 <= value <= SMTP_CONNECTIONS_MAX:
        raise ConfigError(
            f"{source}: SMTP connections must be a number from 1 to {SMTP_CONNECTIONS_MAX}"
        )
    return value


def parse_smtp_url(url: str) -> SmtpConfig:
    """``smtp://user:pass@host:587?security=starttls&connections=4`` (security: starttls,
    tls or none; connections: 1 to ``SMTP_CONNECTIONS_MAX``, default 4).

    Raises ``ConfigError`` naming ``GOBILLER_SMTP_URL`` for anything else (another
    scheme, no host, a port that is not a number from 1 to 65535, another security,
    a query parameter it does not know)."""
    parts = urlsplit(url)
    if parts.scheme != "smtp" or not parts.hostname:
        raise ConfigError(f"{ENV_SMTP}: expected smtp://user:pass@host:port?security=starttls")
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - {"security", "connections"})
    if unknown:
        raise ConfigError(
            f"{ENV_SMTP}: unknown parameter {unknown[0]!r} (parameters: connections, security)"
        )
    security = query.get("security", ["starttls"])[0]
    connections = smtp_connections(query.get("connections", [SMTP_CONNECTIONS])[0], ENV_SMTP)
    if security not in SMTP_SECURITY:
        raise ConfigError(f"{ENV_SMTP}: security must be one of {', '.join(SMTP_SECURITY)}")
    default_port = {"starttls": 587, "tls": 465, "none": 25}[security]
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0 or (port is None and parts.netloc.endswith(":")):
        raise ConfigError(f"{ENV_SMTP}: the port must be a number from 1 to 65535")
    return SmtpConfig(
        host=smtp_host(parts.hostname, ENV_SMTP),
        port=port or default_port,
        security=security,
        username=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        connections=connections,
    )


def _smtp_from_table(table: dict[str, Any], source: str) -> SmtpConfig:
    security = table.get("security", "starttls")
    if security not in SMTP_SECURITY or not isinstance(table.get("host"), str):
        raise ConfigError(f"{source}: [smtp] needs host and security one of {SMTP_SECURITY}")
    port = table.get("port", {"starttls": 587, "tls": 465, "none": 25}[security])
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ConfigError(f"{source}: [smtp] port must be a number from 1 to 65535")
    for key in ("username", "password"):
        if not isinstance(table.get(key, ""), str):
            raise ConfigError(f"{source}: [smtp] {key} must be a string")
    return SmtpConfig(
        host=smtp_host(table["host"], source),
        port=port,
        security=security,
        username=table.get("username", ""),
        password=table.get("password", ""),
        connections=smtp_connections(
            table.get("connections", SMTP_CONNECTIONS), f"{source}: [smtp] connections"
        ),
    )


def check_shape(raw: dict[str, Any], source: str) -> None:
    """Refuse a config file whose tables or keys this version does not know, or whose
    values have the wrong type (``CONFIG_TABLES``). Raises ``ConfigError`` naming the
    file and the key, so a typo (``[databse]``, ``urll``) never silently falls back to
    the default database or the local Maildir."""
    for name, value in raw.items():
        if name not in CONFIG_TABLES:
            known = ", ".join(f"[{t}]" for t in CONFIG_TABLES)
            raise ConfigError(f"{source}: unknown setting {name!r} (tables: {known})")
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: {name} must be a table ([{name}])")
        keys = CONFIG_TABLES[name]
        for key, item in value.items():
            if keys is not None and key not in keys:
                raise ConfigError(
                    f"{source}: unknown key {key!r} in [{name}] (keys: {', '.join(sorted(keys))})"
                )
            if name in ("database", "mail", "keys") and not isinstance(item, str):
                raise ConfigError(f"{source}: [{name}] {key} must be a string")


def check_database_url(url: str, source: str) -> None:
    """Refuse a database URL GoBiller cannot open: a scheme other than ``sqlite`` or
    ``postgresql`` (``postgres``), a SQLite URL without a file (``sqlite:///path``,
    ``sqlite:////absolute/path``), a server URL whose port is not a number (a URL
    without a host is libpq's local socket). Raises ``ConfigError`` naming ``source``
    (the option, the environment variable or the file) and the URL with any password
    hidden."""
    parts = urlsplit(url)
    shown = hide_password(url)
    if parts.scheme not in DATABASE_SCHEMES:
        raise ConfigError(
            f"{source}: unsupported database URL {shown!r}: use sqlite:///path "
            "or postgresql://user@host/database"
        )
    if parts.scheme == "sqlite":
        if not url.startswith("sqlite:///") or url == "sqlite:///":
            raise ConfigError(
                f"{source}: SQLite URL {shown!r} has no file: use sqlite:///relative/path "
                "or sqlite:////absolute/path"
            )
        return
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise ConfigError(f"{source}: database URL {shown!r}: {exc}") from exc


def hide_password(url: str) -> str:
    """``url`` with its password, if any, replaced by ``***``."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)).geturl()


@dataclass(frozen=True)
class Config:
    database_url: str
    #: Where the URL came from: "option", "environment", a file path, or "default".
    database_source: str
    config_file: Path | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    #: None: deliver into the local Maildir.
    smtp: SmtpConfig | None = None
    maildir: Path = field(default_factory=lambda: data_dir() / "Maildir")

    def table(self, name: str) -> dict[str, Any]:
        value = self.raw.get(name, {})
        if not isinstance(value, dict):
            raise ConfigError(f"{self.config_file}: [{name}] must be a table")
        return value


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror}") from exc


def load_config(
    database_option: str | None = None,
    *,
    environ: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Config:
    """Resolve the configuration; the first config file found is the one used.

    Raises ``ConfigError`` (exit 78) for a config file that cannot be read, is not TOML
    or has an unknown or mistyped setting (``check_shape``), for a database URL that
    cannot be used, whichever of the option, ``GOBILLER_DATABASE`` or the file gave it
    (``check_database_url``), and for an unusable ``GOBILLER_SMTP_URL`` or ``[smtp]``.
    """
    env = os.environ if environ is None else environ
    config_file = next((p for p in config_candidates(cwd) if p.is_file()), None)
    raw = _read_toml(config_file) if config_file else {}
    check_shape(raw, str(config_file))
    file_url = raw.get("database", {}).get("url")
    if database_option:
        url, source, label = database_option, "option", "--database"
    elif env.get(ENV_DATABASE):
        url, source, label = env[ENV_DATABASE], "environment", ENV_DATABASE
    elif file_url:
        url, source = file_url, str(config_file)
        label = f"{config_file}: [database] url"
    else:
        url, source = f"sqlite:///{data_dir() / 'gobiller.sqlite3'}", "default"
        label = "the default database"
    check_database_url(url, label)
    smtp: SmtpConfig | None = None
    if env.get(ENV_SMTP):
        smtp = parse_smtp_url(env[ENV_SMTP])
    elif "smtp" in raw:
        smtp = _smtp_from_table(raw["smtp"], str(config_file))
    mail = raw.get("mail", {})
    maildir = Path(mail["maildir"]).expanduser() if mail.get("maildir") else data_dir() / "Maildir"
    return Config(
        database_url=url,
        database_source=source,
        config_file=config_file,
        raw=raw,
        smtp=smtp,
        maildir=maildir,
    )
