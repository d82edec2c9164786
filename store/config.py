"""Where the configuration comes from.

Database URL precedence: ``--database`` > ``GOBILLER_DATABASE`` > ``gobiller.toml``
(current folder, then the user config folder, then ``/etc/gobiller/config.toml``)
> a SQLite file in the user data folder.
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


def parse_smtp_url(url: str) -> SmtpConfig:
    """``smtp://user:pass@host:587?security=starttls`` (security: starttls, tls or none)."""
    parts = urlsplit(url)
    if parts.scheme != "smtp" or not parts.hostname:
        raise ConfigError(f"{ENV_SMTP}: expected smtp://user:pass@host:port?security=starttls")
    security = parse_qs(parts.query).get("security", ["starttls"])[0]
    if security not in SMTP_SECURITY:
        raise ConfigError(f"{ENV_SMTP}: security must be one of {', '.join(SMTP_SECURITY)}")
    default_port = {"starttls": 587, "tls": 465, "none": 25}[security]
    return SmtpConfig(
        host=smtp_host(parts.hostname, ENV_SMTP),
        port=parts.port or default_port,
        security=security,
        username=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
    )


def _smtp_from_table(table: dict[str, Any], source: str) -> SmtpConfig:
    security = table.get("security", "starttls")
    if security not in SMTP_SECURITY or not isinstance(table.get("host"), str):
        raise ConfigError(f"{source}: [smtp] needs host and security one of {SMTP_SECURITY}")
    port = table.get("port", {"starttls": 587, "tls": 465, "none": 25}[security])
    if not isinstance(port, int):
        raise ConfigError(f"{source}: [smtp] port must be a number")
    return SmtpConfig(
        host=smtp_host(table["host"], source),
        port=port,
        security=security,
        username=str(table.get("username", "")),
        password=str(table.get("password", "")),
    )


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
    """Resolve the configuration; the first config file found is the one used."""
    env = os.environ if environ is None else environ
    config_file = next((p for p in config_candidates(cwd) if p.is_file()), None)
    raw = _read_toml(config_file) if config_file else {}
    file_url = raw.get("database", {}).get("url") if isinstance(raw.get("database"), dict) else None
    if database_option:
        url, source = database_option, "option"
    elif env.get(ENV_DATABASE):
        url, source = env[ENV_DATABASE], "environment"
    elif file_url:
        if not isinstance(file_url, str):
            raise ConfigError(f"{config_file}: [database] url must be a string")
        url, source = file_url, str(config_file)
    else:
        url, source = f"sqlite:///{data_dir() / 'gobiller.sqlite3'}", "default"
    smtp: SmtpConfig | None = None
    if env.get(ENV_SMTP):
        smtp = parse_smtp_url(env[ENV_SMTP])
    elif isinstance(raw.get("smtp"), dict):
        smtp = _smtp_from_table(raw["smtp"], str(config_file))
    mail = raw.get("mail", {}) if isinstance(raw.get("mail"), dict) else {}
    maildir = Path(mail["maildir"]).expanduser() if mail.get("maildir") else data_dir() / "Maildir"
    return Config(
        database_url=url,
        database_source=source,
        config_file=config_file,
        raw=raw,
        smtp=smtp,
        maildir=maildir,
    )
