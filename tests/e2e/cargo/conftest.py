"""Fixtures for cargo end-to-end tests: the real cargo (isolated), crate directories."""

from __future__ import annotations

import os

import pytest

from tests.support.cargo_client import find_toolchain


@pytest.fixture(scope="session")
def toolchain():
    bin_dir = find_toolchain()
    if bin_dir is None:
        if os.environ.get("CI"):
            pytest.fail("cargo is not installed (make test installs it: scripts/test-tools.d/cargo.sh)")
        pytest.skip("cargo not installed")
    return bin_dir

