from __future__ import annotations

from pathlib import Path

import pytest

from store.config import ConfigError, load_config


@pytest.fixture
def dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A working folder and XDG folders of our own, so the real ones never leak in."""
    cwd = tmp_path / "cwd"
    config_home = tmp_path / "config"
    data_home = tmp_path / "data"
    for d in (cwd, config_home / "gobiller", data_home):
        d.mkdir(parents=True)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config_home))
    monkeypatch.setenv("XDG_DATA_HOME", str(data_home))
    return {"cwd": cwd, "user": config_home / "gobiller", "data": data_home}


def _write(folder: Path, url: str) -> Path:
    path = folder / "gobiller.toml"
    path.write_text(f'[database]\nurl = "{url}"\n')
    return path


def test_precedence(dirs: dict[str, Path]) -> None:
    env = {"GOBILLER_DATABASE": "sqlite:///env.db"}
    _write(dirs["cwd"], "sqlite:///cwd.db")
    user_file = _write(dirs["user"], "sqlite:///user.db")

    cfg = load_config("sqlite:///opt.db", environ=env, cwd=dirs["cwd"])
    assert (cfg.database_url, cfg.database_source) == ("sqlite:///opt.db", "option")

    cfg = load_config(None, environ=env, cwd=dirs["cwd"])
    assert (cfg.database_url, cfg.database_source) == ("sqlite:///env.db", "environment")

    cfg = load_config(None, environ={}, cwd=dirs["cwd"])
    assert cfg.database_url == "sqlite:///cwd.db"

    (dirs["cwd"] / "gobiller.toml").unlink()
    cfg = load_config(None, environ={}, cwd=dirs["cwd"])
    assert (cfg.database_url, cfg.config_file) == ("sqlite:///user.db", user_file)

    user_file.unlink()
    cfg = load_config(None, environ={}, cwd=dirs["cwd"])
    assert cfg.database_source == "default"
    assert cfg.database_url == f"sqlite:///{dirs['data'] / 'gobiller' / 'gobiller.sqlite3'}"


def test_empty_environment_value_is_ignored(dirs: dict[str, Path]) -> None:
    cfg = load_config(None, environ={"GOBILLER_DATABASE": ""}, cwd=dirs["cwd"])
    assert cfg.database_source == "default"


def test_broken_toml_is_a_clear_error(dirs: dict[str, Path]) -> None:
    (dirs["cwd"] / "gobiller.toml").write_text("[database\nurl=")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(None, environ={}, cwd=dirs["cwd"])


def test_an_email_address_is_sent_as_the_standards_say_smtp_host_as_its_a_label(
    dirs: dict[str, Path],
) -> None:
    """An internationalised mail server name is connected to by its IDNA 2008 A-label
    (Python's socket and ssl would use IDNA 2003: straße would become strasse)."""
    env = {"GOBILLER_SMTP_URL": "smtp://mail.straße.example:587?security=starttls"}
    assert load_config(None, environ=env, cwd=dirs["cwd"]).smtp.host == (  # type: ignore[union-attr]
        "mail.xn--strae-oqa.example"
    )
    (dirs["cwd"] / "gobiller.toml").write_text('[smtp]\nhost = "smtp.bücher.example"\n')
    cfg = load_config(None, environ={}, cwd=dirs["cwd"])
    assert cfg.smtp is not None and cfg.smtp.host == "smtp.xn--bcher-kva.example"
    with pytest.raises(ConfigError, match="not a valid domain name"):
        load_config(None, environ={"GOBILLER_SMTP_URL": "smtp://mail.☃.example"}, cwd=dirs["cwd"])


def test_smtp_connections_come_from_the_file_or_the_url_and_default_to_4(
    dirs: dict[str, Path],
) -> None:
    """How many SMTP sessions delivery holds open: ``[smtp] connections`` or
    ``?connections=`` in GOBILLER_SMTP_URL, 4 when unsaid; what is not 1 to 32 (or an
    unknown URL parameter, a typo) is one clear error, never a silent default."""
    url = "smtp://mail.example.com:587?security=starttls"
    cfg = load_config(None, environ={"GOBILLER_SMTP_URL": url}, cwd=dirs["cwd"])
    assert cfg.smtp is not None and cfg.smtp.connections == 4
    env = {"GOBILLER_SMTP_URL": url + "&connections=7"}
    cfg = load_config(None, environ=env, cwd=dirs["cwd"])
    assert cfg.smtp is not None and cfg.smtp.connections == 7
    assert cfg.smtp.shown() == "smtp://mail.example.com:587 (starttls, 7 connections)"
    toml = dirs["cwd"] / "gobiller.toml"
    toml.write_text('[smtp]\nhost = "mail.example.com"\nconnections = 2\n')
    cfg = load_config(None, environ={}, cwd=dirs["cwd"])
    assert cfg.smtp is not None and cfg.smtp.connections == 2
    for bad in ("0", "33", '"four"', "true", "2.5", '"²"', '"١"'):
        (dirs["cwd"] / "gobiller.toml").write_text(
            f'[smtp]\nhost = "mail.example.com"\nconnections = {bad}\n'
        )
        with pytest.raises(ConfigError, match=r"\[smtp\] connections.*1 to 32"):
            load_config(None, environ={}, cwd=dirs["cwd"])
    # Digits that are not ASCII digits ("²" passes str.isdigit and then breaks int()).
    queries = ("connections=0", "connections=x", "connections=", "conections=8")
    for query in (*queries, "connections=²", "connections=%C2%B2", "connections=١"):
        env = {"GOBILLER_SMTP_URL": f"smtp://mail.example.com?{query}"}
        with pytest.raises(ConfigError, match="GOBILLER_SMTP_URL"):
            load_config(None, environ=env, cwd=dirs["cwd"])
