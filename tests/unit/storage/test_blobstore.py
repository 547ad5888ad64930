"""Behaviour every BlobStore implementation must have (run over each registered implementation)."""

from __future__ import annotations

import hashlib
import os

import pytest

from wharf.storage import BlobTooLarge, DigestMismatch, LocalBlobStore


@pytest.fixture(params=["local"])
def store(request, tmp_path):
    if request.param == "local":
        return LocalBlobStore(tmp_path / "blobs")
    raise AssertionError(request.param)  # pragma: no cover


def test_write_commit_is_content_addressed(store):
    data = os.urandom(3 * 1024 * 1024 + 17)
    w = store.writer(algorithms=("md5", "blake2_256"))
    for i in range(0, len(data), 65536):
        w.write(data[i:i + 65536])
    ref = w.commit()
    assert ref.sha256 == hashlib.sha256(data).hexdigest() and ref.size == len(data)
    assert ref.digests["md5"] == hashlib.md5(data).hexdigest()
    assert ref.digests["blake2_256"] == hashlib.blake2b(data, digest_size=32).hexdigest()
    assert w.created and store.exists(ref.sha256) and store.verify(ref.sha256)
    with store.open(ref.sha256) as fh:
        assert fh.read() == data
    assert list(store.iter_blobs()) == [(ref.sha256, len(data))]


def test_nothing_visible_before_commit_and_abort_leaves_nothing(store):
    w = store.writer()
    w.write(b"partial")
    sha = hashlib.sha256(b"partial").hexdigest()
    assert not store.exists(sha) and list(store.iter_blobs()) == []
    w.abort()
    assert list(store.tmp_dir.iterdir()) == []


def test_second_write_of_same_bytes_is_deduplicated(store):
    a = store.put_bytes(b"same")
    w = store.writer()
    w.write(b"same")
    b = w.commit()
    assert a == b and not w.created
    assert len(list(store.iter_blobs())) == 1 and list(store.tmp_dir.iterdir()) == []


def test_storing_bytes_already_stored_touches_the_blob_for_gc(store):
    a = store.put_bytes(b"kept")
    path = store.local_path(a.sha256)
    os.utime(path, (1_000_000, 1_000_000))  # as old as a blob `wharf gc` may take
    assert store.put_bytes(b"kept") == a
    assert os.stat(path).st_mtime > 1_000_000
    os.utime(path, (1_000_000, 1_000_000))
    w = store.writer()
    w.write(b"kept")
    assert w.commit() == a and not w.created
    assert os.stat(path).st_mtime > 1_000_000
    assert list(store.tmp_dir.iterdir()) == [] and len(list(store.iter_blobs())) == 1


def test_size_limit_and_expected_digest(store):
    w = store.writer(max_size=10)
    w.write(b"12345")
    with pytest.raises(BlobTooLarge):
        w.write(b"678901")
    w.abort()
    w = store.writer()
    w.write(b"abc")
    with pytest.raises(DigestMismatch):
        w.commit(expect_sha256="0" * 64)
    assert list(store.iter_blobs()) == [] and list(store.tmp_dir.iterdir()) == []


def test_verify_detects_corruption_and_cleanup_temp(store):
    ref = store.put_bytes(b"good bytes")
    path = store.local_path(ref.sha256)
    if path is None:  # pragma: no cover - object stores
        pytest.skip("no local files")
    os.chmod(path, 0o644)
    path.write_bytes(b"evil bytes")
    assert not store.verify(ref.sha256)
    (store.tmp_dir / "up-crashed").write_bytes(b"x")
    assert store.cleanup_temp(older_than=3600) == 0  # a live upload's temp file survives
    assert store.cleanup_temp(older_than=0) == 1


def test_rejects_non_digest_names(store):
    with pytest.raises(ValueError):
        store.exists("../../etc/passwd")
