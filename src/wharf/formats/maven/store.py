"""What a Maven repository publishes, rendered on change and served without the database.

Per stored file, a page ``f/<path>`` whose variants are the file's checksums (``md5``, ``sha1``, ``sha256``,
``sha512``) and whose meta says which blob to send; the bytes are published under
``files/<sha256>/<file name>``. Per package (``groupId:artifactId``), the artifact-level ``maven-metadata.xml``
(``m/<g>/<a>/maven-metadata.xml``) and one per SNAPSHOT version, each with its checksums as variants. Everything
is derived from the stored files: uploaded metadata is validated but never served.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Collection, Iterable

from ...core.content import LiveFile
from ...core.interfaces import RepoInfo
from . import metadata as md
from .parse import SNAPSHOT, ArtifactFile, MetadataPath, parse_path
from .versions import MavenVersion

if TYPE_CHECKING:  # pragma: no cover
    from ...core.pages import Page
    from ...core.services import Core

__all__ = ["file_key", "metadata_key", "upload_key", "publish", "publish_file", "link", "page_of_file",
           "render_name", "FILE_META_KEYS", "CONTENT_TYPES", "content_type"]

# digests kept with every stored file (sha256 is the blob's own)
FILE_META_KEYS = ("path", "md5", "sha1", "sha512")
CONTENT_TYPES = {"pom": b"text/xml", "xml": b"text/xml", "jar": b"application/java-archive",
                 "module": b"application/json", "asc": b"text/plain"}


def content_type(extension: str) -> bytes:
    return CONTENT_TYPES.get(extension.rpartition(".")[2], b"application/octet-stream")


# Page keys are the layout paths under a prefix: parse.parse_path admits only letters, digits and "._+-" in them.
def file_key(path: str) -> str:
    return "f/" + path


def metadata_key(path: str) -> str:
    return "m/" + path


def upload_key(path: str) -> str:
    """Where the digests of the last uploaded copy of a metadata file are kept (for its checksum uploads)."""
    return "u/" + path


def _stamp(dt: Any) -> str:
    if dt is None:
        return datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S")
    if dt.tzinfo is not None:
        dt = dt.astimezone(timezone.utc)
    return dt.strftime("%Y%m%d%H%M%S")


def _digest_variants(f: LiveFile) -> dict[str, bytes]:
    return {"md5": f.meta["md5"].encode(), "sha1": f.meta["sha1"].encode(), "sha256": f.sha256.encode(),
            "sha512": f.meta["sha512"].encode()}


def link(core: "Core", repo: RepoInfo, f: LiveFile) -> None:
    from ...core.published import link_file

    basename = f.meta["path"].rpartition("/")[2]
    if core.pages.file_path(repo.name, f.sha256, basename) is None:
        link_file(core, repo.name, f.sha256, basename)


def publish_file(core: "Core", repo: RepoInfo, f: LiveFile, version: int) -> None:
    """Make one stored file downloadable at its path (with its checksums)."""
    link(core, repo, f)
    core.pages.write(repo.name, file_key(f.meta["path"]), version, _digest_variants(f),
                     {"sha256": f.sha256, "size": f.size})


def page_of_file(core: "Core", repo_name: str, path: str) -> "Page | None":
    try:
        return core.pages.read(repo_name, file_key(path))
    except ValueError:
        return None


def render_name(core: "Core", repo: RepoInfo, name: str, version: int, files: list[LiveFile],
                snapshots: Collection[str] | None = None) -> None:
    """(Re-)render the artifact-level metadata of ``name`` and the metadata of its SNAPSHOT versions (None: all of
    them, and delete those of versions that are gone) from its stored files."""
    group_id, _, artifact_id = name.partition(":")
    base = f"{group_id.replace('.', '/')}/{artifact_id}"
    art_path = MetadataPath(group_id, artifact_id, None).path
    by_version: dict[str, list[LiveFile]] = {}
    for f in files:
        by_version.setdefault(f.version, []).append(f)
    if not by_version:
        core.pages.delete(repo.name, metadata_key(art_path))
    else:
        versions = sorted(by_version, key=MavenVersion)
        last = _stamp(max(f.added_at for f in files))
        body = md.render_artifact(md.ArtifactMetadata(group_id, artifact_id, versions, last))
        core.pages.write(repo.name, metadata_key(art_path), version, md.checksum_variants(body), {"versions": versions})
    targets = list(snapshots) if snapshots is not None else [v for v in by_version if v.endswith(SNAPSHOT)]
    for v in targets:
        path = f"{base}/{v}/maven-metadata.xml"
        vfiles = by_version.get(v)
        if not vfiles:
            core.pages.delete(repo.name, metadata_key(path))
            continue
        doc = snapshot_metadata(group_id, artifact_id, v, vfiles)
        core.pages.write(repo.name, metadata_key(path), version, md.checksum_variants(md.render_snapshot(doc)))
    if snapshots is None:  # SNAPSHOT versions that are gone entirely
        base_dir = core.pages.root / repo.name / metadata_key(base)
        if base_dir.is_dir():
            alive = set(by_version)
            for page in base_dir.glob(f"*{SNAPSHOT}/maven-metadata.xml.page"):
                if page.parent.name not in alive:
                    core.pages.remove_file(page)


def snapshot_metadata(group_id: str, artifact_id: str, version: str, files: Iterable[LiveFile]) -> md.SnapshotMetadata:
    """The version-level metadata of a SNAPSHOT version from its stored files: the newest build, and per
    classifier/extension the newest file."""
    newest: tuple[str, int] | None = None
    latest: dict[tuple[str | None, str], tuple[tuple[str, int], str, str]] = {}
    last = ""
    for f in files:
        parsed = parse_path(f.meta["path"])
        assert isinstance(parsed, ArtifactFile)
        stamp = _stamp(f.added_at)
        last = max(last, stamp)
        build = (parsed.timestamp or "", parsed.build_number or 0)
        if parsed.timestamp is not None and (newest is None or build > newest):
            newest = build
        k = (parsed.classifier, parsed.extension)
        if k not in latest or build >= latest[k][0]:
            latest[k] = (build, parsed.file_version, stamp)
    entries = [md.SnapshotFile(c, e, value, updated) for (c, e), (_b, value, updated) in
               sorted(latest.items(), key=lambda kv: (kv[0][1], kv[0][0] or ""))]
    return md.SnapshotMetadata(group_id, artifact_id, version, newest[0] if newest else None,
                               newest[1] if newest else None, last, entries)


def publish(core: "Core", repo: RepoInfo, names: Collection[str] | None) -> None:
    """Render the pages of ``names`` (None: everything) from what is stored. Groups have no pages of their own;
    proxies publish the files they cached (their metadata mirrors the upstream's)."""
    if repo.kind == "group":
        return
    version = repo.version
    targets = core.content.names(repo) if names is None else list(names)
    live_paths: set[str] = set()
    for name in targets:
        files = core.content.files(repo, name, meta_keys=FILE_META_KEYS)
        for f in files:
            publish_file(core, repo, f, version)
            live_paths.add(file_key(f.meta["path"]))
        if repo.kind == "hosted":
            render_name(core, repo, name, version, files)
        if names is not None:
            _drop_file_pages(core, repo, name, live_paths)
    if names is None:
        _drop_file_pages(core, repo, None, live_paths)


def _drop_file_pages(core: "Core", repo: RepoInfo, name: str | None, live: set[str]) -> None:
    """Delete file pages under a package's directory (or the whole repository) that are not in ``live``."""
    root = core.pages.root / repo.name
    if name is None:
        base = root / "f"
    else:
        group_id, _, artifact_id = name.partition(":")
        base = root / file_key(f"{group_id.replace('.', '/')}/{artifact_id}")
    if not base.is_dir():
        return
    # a package's files are exactly two levels below it (<version>/<file>); deeper ones belong to other packages
    for page in (base.rglob("*.page") if name is None else base.glob("*/*.page")):
        key = str(page.relative_to(root))[:-len(".page")]
        if key not in live:
            core.pages.remove_file(page)
