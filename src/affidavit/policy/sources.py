"""Which repository an attestation's ``source.repository`` names, however it is spelt.

``consistentRevision`` asks that provenance and review describe one change. A commit id alone
does not say which repository: a fork shares its commits, so a pull request in a fork (where a
second account can approve) has the same head revision as the one the image was built from.
The review must therefore name the provenance's repository too. The two are written by different
collectors: the provenance records the checkout's ``origin`` remote as git has it
(``git@github.com:acme/shop.git``, ``https://github.com/acme/shop.git``, ``ssh://…``) or a local
path without one, the review the change request's web address (``https://github.com/acme/shop``)
or, from trailers, the same remote or a ``file://`` URI. Each is reduced to ``host/path`` (or
``path:/absolute/path`` for a local one), lower case, without scheme, login, port, trailing
``/`` or ``.git``: different spellings of one repository agree, different repositories do not.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

__all__ = ["repository_key"]

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# git's scp-like syntax: [user@]host:path, with no "/" before the ":" (else it is a local path)
_SCP = re.compile(r"^(?:[^@/]*@)?([^:/]+):(.*)$")


def _trimmed(path: str) -> str:
    path = path.strip("/")
    path = path.removesuffix(".git")
    return path.rstrip("/").lower()


def repository_key(name: str) -> str:
    """``host/path`` of a remote repository, or ``path:/…`` of a local one."""
    text = name.strip()
    if _SCHEME.match(text):
        parts = urlsplit(text)
        if parts.scheme.lower() == "file":
            return "path:/" + _trimmed(unquote(parts.path))
        host = parts.netloc.rpartition("@")[2]
        host = re.sub(r":\d*$", "", host)  # the port: ssh on :22 and https name one repository
        return f"{host.lower()}/{_trimmed(unquote(parts.path))}"
    scp = _SCP.match(text)
    if scp is not None and len(scp.group(1)) > 1:  # "C:\\…" is a drive, not a host
        return f"{scp.group(1).lower()}/{_trimmed(scp.group(2))}"
    return "path:/" + _trimmed(text)
