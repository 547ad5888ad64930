"""A fresh Wharf application on a migrated data directory, called in-process (shared by the page-memo tests)."""

from __future__ import annotations

import pytest

from wharf.app import create_app
from wharf.config import Settings
from wharf.core.services import Core


@pytest.fixture
def app(tmp_path):
    settings = Settings(data=tmp_path / "data", access_log=False)
    Core(settings, migrate=True).close()
    application = create_app(settings)
    yield application
    application.core.close()
