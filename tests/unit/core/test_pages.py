from __future__ import annotations

import os

import pytest

from wharf.core.pages import PageStore


def test_write_read_and_cache_refresh(tmp_path):
    pages = PageStore(tmp_path)
    assert pages.read("dev", "simple/foo") is None
    assert pages.write("dev", "simple/foo", 3, {"html": b"<a>1</a>", "json": b"{}"})
    p = pages.read("dev", "simple/foo")
    assert p.version == 3 and p.variants["html"][1] == b"<a>1</a>" and p.variants["json"][1] == b"{}"
    assert pages.read("dev", "simple/foo") is p  # served from memory while the file is unchanged
    assert pages.write("dev", "simple/foo", 4, {"html": b"<a>2</a>", "json": b"[]"})
    p2 = pages.read("dev", "simple/foo")
    assert p2.version == 4 and p2.variants["html"][1] == b"<a>2</a>"
    assert p2.variants["html"][0] != p.variants["html"][0]  # the ETag follows the content


def test_changes_by_another_process_are_seen(tmp_path):
    """Two stores on one tree stand for two server processes: each serves its parsed pages from memory until a
    write, delete or removal by either moves the shared change signal."""
    mine, theirs = PageStore(tmp_path), PageStore(tmp_path)
    mine.write("dev", "simple/foo", 1, {"html": b"one"})
    mine.write("dev", "simple/bar", 1, {"html": b"bar"})
    first = mine.read("dev", "simple/foo")
    bar = mine.read("dev", "simple/bar")
    assert theirs.write("dev", "simple/foo", 2, {"html": b"two"})
    assert mine.read("dev", "simple/foo").variants["html"][1] == b"two"
    assert mine.read("dev", "simple/foo") is not first
    assert mine.read("dev", "simple/bar") is bar  # an unchanged page is re-checked, not re-read
    theirs.delete("dev", "simple/foo")
    assert mine.read("dev", "simple/foo") is None
    assert mine.read("dev", "simple/foo") is None  # and it stays gone (not served from memory)
    theirs.remove_file(tmp_path / "dev" / "simple" / "bar.page")
    assert mine.read("dev", "simple/bar") is None
    theirs.write("dev", "simple/baz", 1, {"html": b"baz"})
    assert mine.read("dev", "simple/baz").variants["html"][1] == b"baz"
    theirs.drop_repository("dev")
    assert mine.read("dev", "simple/baz") is None


def test_older_render_never_replaces_newer(tmp_path):
    pages = PageStore(tmp_path)
    pages.write("dev", "simple/foo", 7, {"html": b"new"})
    assert not pages.write("dev", "simple/foo", 6, {"html": b"old"})
    assert pages.read("dev", "simple/foo").variants["html"][1] == b"new"


@pytest.mark.parametrize("key", ["../x", "simple/../../x", "/abs", "a//b", ".hidden", "sp ace", "a\\b", "nul\x00", ""])
def test_unsafe_keys_are_refused(tmp_path, key):
    pages = PageStore(tmp_path)
    with pytest.raises(ValueError):
        pages.write("dev", key, 1, {"html": b""})
    assert pages.read("dev", key) is None


def test_file_links_publish_and_unpublish(tmp_path):
    pages = PageStore(tmp_path / "pages")
    blob = tmp_path / "blob"
    blob.write_bytes(b"wheel")
    meta = tmp_path / "meta"
    meta.write_bytes(b"Metadata-Version: 2.1")
    sha = "a" * 64
    assert pages.file_path("dev", sha, "x-1.0-py3-none-any.whl") is None
    pages.link_file("dev", sha, "x-1.0-py3-none-any.whl", blob)
    pages.link_file("dev", sha, "x-1.0-py3-none-any.whl.metadata", meta)
    path, st = pages.file_path("dev", sha, "x-1.0-py3-none-any.whl")
    assert open(path, "rb").read() == b"wheel" and st.st_size == 5
    assert pages.file_path("other", sha, "x-1.0-py3-none-any.whl") is None  # per repository
    assert pages.file_path("dev", sha, "../blob") is None
    pages.unlink_file("dev", sha, "x-1.0-py3-none-any.whl")
    assert pages.file_path("dev", sha, "x-1.0-py3-none-any.whl") is None
    assert pages.file_path("dev", sha, "x-1.0-py3-none-any.whl.metadata") is None  # derived files go too
    assert os.path.exists(blob)  # the blob itself is never touched


def test_linking_again_is_a_no_op_and_a_new_target_replaces_the_link(tmp_path):
    pages = PageStore(tmp_path / "pages")
    old, new = tmp_path / "old", tmp_path / "new"
    old.write_bytes(b"old")
    new.write_bytes(b"new")
    sha = "b" * 64
    pages.link_file("dev", sha, "f.bin", old)
    pages.link_file("dev", sha, "f.bin", old)
    path, _ = pages.file_path("dev", sha, "f.bin")
    assert open(path, "rb").read() == b"old"
    pages.link_file("dev", sha, "f.bin", new)
    path, _ = pages.file_path("dev", sha, "f.bin")
    assert open(path, "rb").read() == b"new"
    assert sorted(os.listdir(os.path.dirname(path))) == ["f.bin"]  # no temporary link left behind


def test_stale_marks_are_cleared_by_a_render_that_caught_up(tmp_path):
    pages = PageStore(tmp_path)
    pages.write("dev", "simple/~root", 1, {"html": b"a"})
    assert pages.stale_version("dev", "simple/~root") is None
    pages.mark_stale("dev", "simple/~root", 5)
    pages.mark_stale("dev", "simple/~root", 3)  # never moves backwards
    assert pages.stale_version("dev", "simple/~root") == 5
    pages.write("dev", "simple/~root", 4, {"html": b"b"})  # still behind the change at 5
    assert pages.stale_version("dev", "simple/~root") == 5
    pages.write("dev", "simple/~root", 5, {"html": b"c"})
    assert pages.stale_version("dev", "simple/~root") is None


def test_page_cache_is_lru_within_its_byte_budget(tmp_path, monkeypatch):
    from wharf.core import pages as pages_mod
    monkeypatch.setattr(pages_mod, "_CACHE_BYTES", 3 * (1100 + pages_mod._ENTRY_COST))
    store = PageStore(tmp_path)
    for i in range(3):
        store.write("dev", f"simple/p{i}", 1, {"html": b"x" * 1000})
    hot = store.read("dev", "simple/p0")
    store.read("dev", "simple/p1")
    store.read("dev", "simple/p2")
    store.read("dev", "simple/p0")  # p0 is the most recently used now
    store.write("dev", "simple/p3", 1, {"html": b"y" * 1000})
    store.read("dev", "simple/p3")  # over budget: the least recently used (p1) goes, not p0
    assert store.read("dev", "simple/p0") is hot
    assert store._cached_bytes <= 3 * (1100 + pages_mod._ENTRY_COST)


def test_page_cache_budget_counts_what_an_entry_costs_beyond_its_bytes(tmp_path, monkeypatch):
    """A catalog of tiny pages: the budget bounds the cache's memory, not only the pages' bytes (each entry's objects
    cost about as much as a small page)."""
    import tracemalloc

    from wharf.core import pages as pages_mod
    monkeypatch.setattr(pages_mod, "_CACHE_BYTES", 200 * 1024)
    store = PageStore(tmp_path)
    for i in range(1000):
        store.write("dev", f"simple/p{i}", 1, {"html": b"<a>x</a>" * 40, "json": b'{"x":1}' * 40})
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(1000):
            assert store.read("dev", f"simple/p{i}") is not None
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(store._cache) < 1000  # the budget evicted
    assert held <= 200 * 1024 * 1.25, f"cache holds {held} bytes for a {200 * 1024}-byte budget"
