"""Licence analyzer: the declared licence of a package version, normalised to an SPDX expression, and the licence
files its archives carry.

Each format plugin reports what its metadata declares through the optional method
``declared_licence(file, read) -> DeclaredLicence | None`` (``read()`` returns the file's bytes, for formats whose
metadata is not already kept in ``file.meta``); this module never names a format. Normalisation uses the
``license-expression`` library's SPDX licence list; a declaration that does not normalise is kept as ``licence_raw``.

Summary for policies: ``licence`` (SPDX expression or None), ``licence_raw`` (the text as declared),
``licence_files`` (member paths of LICENSE*/LICENCE*/COPYING*/NOTICE* files).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Callable, Iterable, TypedDict

from .archive import Limits, is_licence_file, open_members

__all__ = ["DeclaredLicence", "normalise", "from_classifiers", "analyze", "licence_files"]


class DeclaredLicence(TypedDict, total=False):
    expression: str | None  # a field meant to hold an SPDX expression (PEP 639 License-Expression, npm, Cargo)
    text: str | None  # free text (Python's older License field, a Maven <licenses> name)
    classifiers: list[str]  # trove classifiers ("License :: OSI Approved :: MIT License")
    choices: list[str]  # several licences the user may choose from (Maven <licenses>, npm's old ``licenses``)


# Trove licence classifiers with one SPDX meaning (ambiguous ones such as "BSD License" are left out on purpose).
_CLASSIFIERS = {
    "License :: OSI Approved :: MIT License": "MIT",
    "License :: OSI Approved :: MIT No Attribution License (MIT-0)": "MIT-0",
    "License :: OSI Approved :: Apache Software License": "Apache-2.0",
    "License :: OSI Approved :: ISC License (ISCL)": "ISC",
    "License :: OSI Approved :: Mozilla Public License 2.0 (MPL 2.0)": "MPL-2.0",
    "License :: OSI Approved :: GNU General Public License v2 (GPLv2)": "GPL-2.0-only",
    "License :: OSI Approved :: GNU General Public License v2 or later (GPLv2+)": "GPL-2.0-or-later",
    "License :: OSI Approved :: GNU General Public License v3 (GPLv3)": "GPL-3.0-only",
    "License :: OSI Approved :: GNU General Public License v3 or later (GPLv3+)": "GPL-3.0-or-later",
    "License :: OSI Approved :: GNU Lesser General Public License v2 (LGPLv2)": "LGPL-2.0-only",
    "License :: OSI Approved :: GNU Lesser General Public License v2 or later (LGPLv2+)": "LGPL-2.0-or-later",
    "License :: OSI Approved :: GNU Lesser General Public License v3 (LGPLv3)": "LGPL-3.0-only",
    "License :: OSI Approved :: GNU Lesser General Public License v3 or later (LGPLv3+)": "LGPL-3.0-or-later",
    "License :: OSI Approved :: GNU Affero General Public License v3": "AGPL-3.0-only",
    "License :: OSI Approved :: GNU Affero General Public License v3 or later (AGPLv3+)": "AGPL-3.0-or-later",
    "License :: OSI Approved :: Python Software Foundation License": "PSF-2.0",
    "License :: OSI Approved :: The Unlicense (Unlicense)": "Unlicense",
    "License :: OSI Approved :: zlib/libpng License": "Zlib",
    "License :: OSI Approved :: Boost Software License 1.0 (BSL-1.0)": "BSL-1.0",
    "License :: OSI Approved :: Eclipse Public License 2.0 (EPL-2.0)": "EPL-2.0",
    "License :: OSI Approved :: European Union Public Licence 1.2 (EUPL 1.2)": "EUPL-1.2",
    "License :: OSI Approved :: Universal Permissive License (UPL)": "UPL-1.0",
    "License :: OSI Approved :: Artistic License": "Artistic-2.0",
    "License :: CC0 1.0 Universal (CC0 1.0) Public Domain Dedication": "CC0-1.0",
}

# Free-text spellings seen in older metadata (Python's License field, Maven <name>) with one SPDX meaning.
_ALIASES = {
    "mit license": "MIT", "the mit license": "MIT", "mit licence": "MIT", "expat": "MIT",
    "apache 2": "Apache-2.0", "apache 2.0": "Apache-2.0", "apache-2": "Apache-2.0", "apache license 2.0": "Apache-2.0",
    "apache license, version 2.0": "Apache-2.0", "the apache license, version 2.0": "Apache-2.0",
    "the apache software license, version 2.0": "Apache-2.0", "apache software license 2.0": "Apache-2.0",
    "apache license version 2.0": "Apache-2.0", "asl 2.0": "Apache-2.0",
    "bsd 3-clause": "BSD-3-Clause", "new bsd license": "BSD-3-Clause", "bsd-3": "BSD-3-Clause",
    "bsd 2-clause": "BSD-2-Clause", "simplified bsd license": "BSD-2-Clause",
    "isc license": "ISC", "mozilla public license 2.0": "MPL-2.0", "mpl 2.0": "MPL-2.0",
    "gplv2": "GPL-2.0-only", "gplv2+": "GPL-2.0-or-later", "gplv3": "GPL-3.0-only", "gplv3+": "GPL-3.0-or-later",
    "lgplv3": "LGPL-3.0-only", "eclipse public license 2.0": "EPL-2.0", "eclipse public license - v 2.0": "EPL-2.0",
    "eclipse public license 1.0": "EPL-1.0", "eclipse public license - v 1.0": "EPL-1.0",
    "the unlicense": "Unlicense", "public domain": None, "cc0": "CC0-1.0", "cc0 1.0": "CC0-1.0",
}


@lru_cache(maxsize=1)
def _licensing() -> Any:
    from license_expression import get_spdx_licensing

    return get_spdx_licensing()


@lru_cache(maxsize=4096)
def _spdx(text: str) -> str | None:
    """The normalised SPDX expression of ``text``, or None when it is not one (unknown keys, free text)."""
    text = text.strip()
    if not text or len(text) > 500:
        return None
    alias = _ALIASES.get(text.lower().rstrip("."))
    if alias is not None or text.lower().rstrip(".") in _ALIASES:
        return alias
    try:
        info = _licensing().validate(text)
    except Exception:  # the library raises on some malformed input instead of reporting it
        return None
    if info.normalized_expression and not info.errors:
        return str(info.normalized_expression)
    # LicenseRef-* are valid SPDX (a licence the list does not have); keep them as written when that is the only issue
    if info.invalid_symbols and all(str(sym).startswith("LicenseRef-") for sym in info.invalid_symbols):
        if re.fullmatch(r"[A-Za-z0-9.+\-() ]+", text):
            return text
    return None


def from_classifiers(classifiers: Iterable[str]) -> str | None:
    """An SPDX expression from trove licence classifiers (several: OR, as PyPI reads them); None if any is unknown."""
    found = [c for c in classifiers if c.startswith("License ::")]
    ids = [_CLASSIFIERS.get(c) for c in found]
    if not ids or any(i is None for i in ids):
        return None
    unique = sorted(set(i for i in ids if i))
    return " OR ".join(unique) if len(unique) > 1 else unique[0]


def normalise(declared: DeclaredLicence | None) -> tuple[str | None, str | None]:
    """``(spdx_expression_or_None, raw_text_or_None)``: the expression field first, then free text, then classifiers."""
    if not declared:
        return None, None
    raw = declared.get("expression") or declared.get("text")
    choices = [c for c in declared.get("choices") or () if c]
    if choices:
        ids = [_spdx(c) for c in choices]
        if all(ids):
            unique = list(dict.fromkeys(ids))
            joined = " OR ".join(f"({i})" if " " in str(i) else str(i) for i in unique)
            return _spdx(joined) or joined, raw
    for candidate in (declared.get("expression"), declared.get("text")):
        if candidate:
            spdx = _spdx(candidate)
            if spdx is not None:
                return spdx, candidate
    classifiers = list(declared.get("classifiers") or ())
    spdx = from_classifiers(classifiers)
    if spdx is not None:
        return spdx, raw or "; ".join(c for c in classifiers if c.startswith("License ::"))
    if raw is None:
        raw = "; ".join(c for c in classifiers if c.startswith("License ::")) or None
    return None, raw


def licence_files(paths: Iterable[str], limit: int = 50) -> list[str]:
    out = sorted({p for p in paths if is_licence_file(p)})
    return out[:limit]


def analyze(files: Iterable[Any], open_file: Callable[[Any], Any], declared_licence: Callable[..., Any] | None,
            *, limits: Limits = Limits()) -> dict[str, Any]:
    """The analyzer's result for one package version (``files``: LiveFile-like objects; ``open_file(f)`` a binary
    file object; ``declared_licence`` the plugin's method, or None when the format declares none)."""
    files = list(files)
    declared: DeclaredLicence | None = None
    source = None
    if declared_licence is not None:
        for f in files:
            def read(f: Any = f) -> bytes:
                with open_file(f) as fh:
                    return fh.read(limits.max_member_size)  # type: ignore[no-any-return]
            try:
                found = declared_licence(f, read)
            except Exception as exc:  # a plugin's parse error must not fail the scan
                found = None
                source = f"{f.filename}: {exc}"
            if found and (found.get("expression") or found.get("text") or found.get("classifiers")):
                declared, source = found, f.filename
                break
    spdx, raw = normalise(declared)
    paths: list[str] = []
    truncated: list[str] = []
    for f in files:
        with open_file(f) as fh:
            members = open_members(fh, name=f.filename, limits=limits, read=False)
            paths.extend(f"{f.filename}!{m.path}" if len(files) > 1 else m.path for m in members)
            truncated.extend(members.truncated)
    lic_files = licence_files(paths)
    findings: list[dict[str, Any]] = []
    if declared is None:
        findings.append({"rule": "licence-undeclared", "severity": "low", "message": "no licence is declared"})
    elif spdx is None:
        findings.append({"rule": "licence-not-spdx", "severity": "low", "file": source,
                         "message": f"the declared licence {raw!r} is not an SPDX expression"})
    for why in truncated:
        findings.append({"rule": "archive-limit", "severity": "low", "message": why})
    status = "pass" if spdx is not None else "warn"
    return {"status": status, "summary": {"licence": spdx, "licence_raw": raw, "licence_files": lic_files},
            "findings": findings}
