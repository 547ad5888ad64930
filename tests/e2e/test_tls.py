"""HTTPS: a server with a certificate from a private test CA; twine, pip and `wharf push` trust it only via that CA."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Iterator

import pytest
import trustme

from tests.support import artifacts
from tests.support.clients import clean_env, pip_install, twine_upload
from tests.support.server import WHARF_BIN, WharfServer

# requests (in twine and pip) lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE from the environment override an explicit --cert;
# empty values switch that off, so what is tested is the command-line option, whatever this machine's environment says.
NO_ENV_CA = {"REQUESTS_CA_BUNDLE": "", "CURL_CA_BUNDLE": ""}


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    d = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    ca_pem, cert_pem, key_pem = d / "ca.pem", d / "server.pem", d / "server.key"
    ca.cert_pem.write_to_path(str(ca_pem))
    with open(cert_pem, "wb") as fh:  # leaf first, then the chain
        for blob in cert.cert_chain_pems:
            fh.write(blob.bytes())
    cert.private_key_pem.write_to_path(str(key_pem))
    return ca_pem, cert_pem, key_pem


@pytest.fixture(scope="module")
def tls_server(tls_files, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WharfServer]:
    ca_pem, cert_pem, key_pem = tls_files
    with WharfServer(tmp_path_factory.mktemp("wharf-tls") / "data", tls=(cert_pem, key_pem), ca_bundle=ca_pem) as srv:
        yield srv


def test_https_upload_and_install_with_the_ca(tls_server, tls_files, tmp_path):
    ca_pem = tls_files[0]
    srv = tls_server
    assert srv.url.startswith("https://localhost:")
    srv.create_repo("secure")
    dist = tmp_path / "dist"
    dist.mkdir()
    wheel = artifacts.make_wheel(dist, "tls-demo", "1.0")
    res = twine_upload(tmp_path, f"{srv.url}/secure/legacy/", [wheel], token=srv.token,
                       extra_args=["--cert", str(ca_pem)], env=NO_ENV_CA)
    assert res.ok, res
    index = f"{srv.url}/secure/simple/"
    res = pip_install(tmp_path, index, "tls-demo==1.0", target=tmp_path / "t1",
                      extra_args=["--cert", str(ca_pem), "--retries", "0", "--timeout", "10"], env=NO_ENV_CA)
    assert res.ok, res
    assert (tmp_path / "t1" / "tls_demo-1.0.dist-info").is_dir()
    # the links in the index stay on https (the server knows its scheme)
    with srv.client(None) as c:
        page = c.get("/secure/simple/tls-demo/")
        assert page.status_code == 200 and "http://" not in page.text


def test_without_the_ca_clients_refuse_the_certificate(tls_server, tmp_path):
    srv = tls_server
    srv.create_repo("secure2")
    dist = tmp_path / "dist"
    dist.mkdir()
    wheel = artifacts.make_wheel(dist, "tls-demo2", "1.0")
    # twine without the CA: refuses
    res = twine_upload(tmp_path, f"{srv.url}/secure2/legacy/", [wheel], token=srv.token, env=NO_ENV_CA)
    assert not res.ok
    assert "CERTIFICATE_VERIFY_FAILED" in res.output or "certificate verify failed" in res.output.lower(), res
    # pip without the CA: a certificate error (and nothing installed)
    res = pip_install(tmp_path, f"{srv.url}/secure2/simple/", "tls-demo2", target=tmp_path / "t",
                      extra_args=["--retries", "0", "--timeout", "10"], env=NO_ENV_CA)
    assert not res.ok
    out = res.output.lower()
    assert "certificate" in out and ("verify failed" in out or "sslerror" in out or "ssl" in out), res
    assert not (tmp_path / "t" / "tls_demo2-1.0.dist-info").exists()


def test_wharf_push_over_https_with_ca_bundle(tls_server, tls_files, tmp_path):
    ca_pem = tls_files[0]
    srv = tls_server
    srv.create_repo("secure3")
    dist = tmp_path / "dist"
    dist.mkdir()
    wheel = artifacts.make_wheel(dist, "tls-push", "1.0")
    env = clean_env(tmp_path, {"WHARF_URL": srv.url, "WHARF_TOKEN": srv.token,
                               "WHARF_CLIENT_CONFIG": str(tmp_path / "none.toml")})
    bad = subprocess.run([WHARF_BIN, "push", "secure3", str(wheel)], env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0
    assert "certificate" in (bad.stdout + bad.stderr).lower()
    env["WHARF_CA_BUNDLE"] = str(ca_pem)
    ok = subprocess.run([WHARF_BIN, "push", "secure3", str(wheel)], env=env, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    with srv.client() as c:
        assert c.get("/api/v1/repositories/secure3/packages/tls-push").json()["files"][0]["filename"] == wheel.name


def test_proxy_of_a_tls_upstream_needs_its_ca(tls_server, tls_files, tmp_path, tmp_path_factory):
    """A proxy trusts the system's store by default (a private CA fails, clearly) and an extra CA bundle when set."""
    ca_pem = tls_files[0]
    tls_server.create_repo("tls-up")
    dist = tmp_path / "dist"
    dist.mkdir()
    wheel = artifacts.make_wheel(dist, "tls-proxied", "1.0")
    res = twine_upload(tmp_path, f"{tls_server.url}/tls-up/legacy/", [wheel], token=tls_server.token,
                       extra_args=["--cert", str(ca_pem)], env=NO_ENV_CA)
    assert res.ok, res
    with WharfServer(tmp_path_factory.mktemp("wharf-plain") / "data") as down:
        upstream = {"url": f"{tls_server.url}/tls-up/simple/", "breaker_threshold": 100}
        for name, extra in (("untrusted", {}), ("trusted", {"ca_bundle": str(ca_pem)})):
            r = down.api("POST", "/api/v1/repositories", json={"name": name, "format": "python", "kind": "proxy",
                                                              "config": {"upstream": {**upstream, **extra}}})
            assert r.status_code == 201, r.text
        with down.client(None) as c:
            bad = c.get("/untrusted/simple/tls-proxied/")
            assert bad.status_code == 502 and "certificate" in bad.json()["error"].lower()
            assert c.get("/trusted/simple/tls-proxied/").status_code == 200
        res = pip_install(tmp_path, f"{down.url}/trusted/simple/", "tls-proxied", target=tmp_path / "t")
        assert res.ok, res
