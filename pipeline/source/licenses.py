"""Licence URLs of arXiv metadata (`<license>` in the arXiv / arXivRaw formats) as SPDX-style ids.

    normalise_license("http://creativecommons.org/licenses/by-nc-sa/4.0/")  -> "CC-BY-NC-SA-4.0"
    normalise_license("http://arxiv.org/licenses/nonexclusive-distrib/1.0/") -> "arXiv-nonexclusive-1.0"

A URL without a known id stays as written (so nothing is lost); no licence gives None. The arXiv licences
have no SPDX id, so they get `arXiv-...` names in the same style. Filters (`--license cc-by,cc0`) match
these ids by prefix, case-insensitively; a paper with no known licence never matches a filter.
"""

import re

_CC_RE = re.compile(r"^creativecommons\.org/licenses/((?:by)(?:-nc)?(?:-sa|-nd)?)/(\d+\.\d+)$")
_KNOWN = {
    "creativecommons.org/publicdomain/zero/1.0": "CC0-1.0",
    "creativecommons.org/licenses/publicdomain": "CC-PDDC",
    "arxiv.org/licenses/nonexclusive-distrib/1.0": "arXiv-nonexclusive-1.0",
    "arxiv.org/licenses/assumed-1991-2003": "arXiv-assumed-1991-2003",
}


def normalise_license(url: str | None) -> str | None:
    """SPDX-style id of a licence URL, the URL itself when unknown, None when there is none."""
    raw = (url or "").strip()
    if not raw:
        return None
    key = re.sub(r"^https?://(www\.)?", "", raw.lower()).rstrip("/")
    if key in _KNOWN:
        return _KNOWN[key]
    m = _CC_RE.match(key)
    return f"CC-{m.group(1).upper()}-{m.group(2)}" if m else raw


def parse_license_filter(spec: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...] | None:
    """`"cc-by,cc0"` (or a list) -> lower-case prefixes; None or empty means no filter (every licence)."""
    items = spec.split(",") if isinstance(spec, str) else list(spec or [])
    prefixes = tuple(sorted({p.strip().lower() for p in items if p and p.strip()}))
    return prefixes or None


def license_matches(license_id: str | None, prefixes: tuple[str, ...] | None) -> bool:
    """True when there is no filter, or the (normalised) licence starts with one of the prefixes."""
    if prefixes is None:
        return True
    return bool(license_id) and license_id.lower().startswith(prefixes)
