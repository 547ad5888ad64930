from __future__ import annotations

from pathlib import Path

import pytest

from wharf.config import load_settings
from wharf.core.errors import InvalidInput
from wharf.core.repositories import validate_repository_name


def test_precedence_toml_env_flags(tmp_path):
    cfg = tmp_path / "wharf.toml"
    cfg.write_text('[server]\nport = 9001\nhost = "127.0.0.2"\ndata = "/srv/wharf"\nmax-upload-size = 1000\n')
    s = load_settings(cfg, environ={})
    assert (s.port, s.host, s.data, s.max_upload_size) == (9001, "127.0.0.2", Path("/srv/wharf"), 1000)
    s = load_settings(cfg, environ={"WHARF_PORT": "9002"})
    assert s.port == 9002 and s.host == "127.0.0.2"
    s = load_settings(cfg, environ={"WHARF_PORT": "9002"}, port=9003)
    assert s.port == 9003
    assert load_settings(None, environ={}).db_url.startswith("sqlite:///")
    assert load_settings(None, environ={"WHARF_DATABASE_URL": "postgresql://x/y"}).db_url == "postgresql://x/y"


def test_retention_interval_from_toml_and_env(tmp_path):
    assert load_settings(None, environ={}).retention_interval == 3600.0
    cfg = tmp_path / "wharf.toml"
    cfg.write_text("[server]\nretention-interval = 600\n")
    assert load_settings(cfg, environ={}).retention_interval == 600.0
    assert load_settings(cfg, environ={"WHARF_RETENTION_INTERVAL": "90.5"}).retention_interval == 90.5
    with pytest.raises(ValueError, match="retention_interval must be a positive"):
        load_settings(None, environ={"WHARF_RETENTION_INTERVAL": "0"})


def test_accel_redirect_from_toml_and_env_must_be_a_location_path(tmp_path):
    assert load_settings(None, environ={}).accel_redirect is None
    cfg = tmp_path / "wharf.toml"
    cfg.write_text('[server]\naccel_redirect = "/-/accel/"\n')
    assert load_settings(cfg, environ={}).accel_redirect == "/-/accel/"
    assert load_settings(cfg, environ={"WHARF_ACCEL_REDIRECT": "/x/y/"}).accel_redirect == "/x/y/"
    for bad in ("_wharf_files/", "/_wharf_files", "/a b/", "/../", "/a/../b/", "http://127.0.0.1/x/", "/x?y/"):
        with pytest.raises(ValueError, match="accel_redirect must be a URI path"):
            load_settings(None, environ={"WHARF_ACCEL_REDIRECT": bad})


def test_unknown_toml_setting_is_an_error(tmp_path):
    cfg = tmp_path / "wharf.toml"
    cfg.write_text("prot = 1\n")
    with pytest.raises(ValueError, match="unknown setting"):
        load_settings(cfg, environ={})


@pytest.mark.parametrize("name", ["dev", "team-a.prod", "py_3", "0day"])
def test_valid_names(name):
    assert validate_repository_name(name) == name


@pytest.mark.parametrize("name", ["Dev", "a b", "-x", "", "api", "ui", "v2", "static", "-", "health", "metrics",
                                  "x/y", "..", "a" * 101, "é"])
def test_invalid_or_reserved_names(name):
    with pytest.raises(InvalidInput):
        validate_repository_name(name)
