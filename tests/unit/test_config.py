"""Settings come from the environment only when asked for."""

from __future__ import annotations

from pathlib import Path

from gisgrid.config import Settings, default_home


def test_defaults_use_embedded_store_in_xdg_data_home(tmp_path):
    settings = Settings.from_env({"XDG_DATA_HOME": str(tmp_path)})
    assert settings.embedded
    assert settings.database_url is None
    assert settings.srid == 4490


def test_environment_overrides():
    env = {"GISGRID_HOME": "~/gg", "GISGRID_DATABASE_URL": "postgresql+psycopg://u@h/db",
           "GISGRID_SRID": "4547"}
    settings = Settings.from_env(env)
    assert settings.home == Path("~/gg").expanduser()
    assert settings.database_url == "postgresql+psycopg://u@h/db"
    assert not settings.embedded
    assert settings.srid == 4547


def test_empty_database_url_means_embedded():
    assert Settings.from_env({"GISGRID_DATABASE_URL": ""}).embedded


def test_default_home_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_home() == tmp_path / "gisgrid"
    monkeypatch.delenv("XDG_DATA_HOME")
    assert default_home() == Path.home() / ".local" / "share" / "gisgrid"
