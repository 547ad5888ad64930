"""Fixtures for the Maven tests: the real ``mvn`` with the pre-fetched plugin cache, projects, repositories."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import unique
from tests.support.maven_client import MavenClient, maven_available, write_project
from tests.support.server import WharfServer

LIB_JAVA = 'public class Greeter {{ public static String greet() {{ return "{text}"; }} }}'
APP_JAVA = 'public class App { public static String run() { return org.acme.lib.Greeter.greet(); } }'


@pytest.fixture(scope="session", autouse=True)
def _maven_tools() -> None:
    missing = maven_available()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)


def create_repo(srv: WharfServer, name: str, kind: str = "hosted", *, private: bool = False, **config) -> dict:
    r = srv.api("POST", "/api/v1/repositories", json={"name": name, "format": "maven", "kind": kind,
                                                      "private": private, "config": config})
    assert r.status_code == 201, r.text
    return r.json()


def lib_project(root: Path, group: str, artifact: str, version: str, deploy_url: str, text: str = "hello") -> Path:
    return write_project(root, group, artifact, version, java=LIB_JAVA.format(text=text), package="org.acme.lib",
                         distribution=(MavenClient.SERVER_ID, deploy_url))


def app_project(root: Path, deps: list[tuple[str, str, str]]) -> Path:
    return write_project(root, "org.acme.app", unique("app"), "1.0", java=APP_JAVA, package="org.acme.app",
                         dependencies=deps)
