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

import platformdirs

APP_NAME = "gobiller"
ENV_DATABASE = "GOBILLER_DATABASE"
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
class Config:
    database_url: str
    #: Where the URL came from: "option", "environment", a file path, or "default".
    database_source: str
    config_file: Path | None = None
    raw: dict[str, Any] = field(default_factory=dict)

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
    return Config(database_url=url, database_source=source, config_file=config_file, raw=raw)
