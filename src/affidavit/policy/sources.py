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
from functools import lru_cache
from urllib.parse import unquote

__all__ = ["repository_key"]

# scheme "://" authority (up to the path, query or fragment) path. Read by this pattern, not by
# urlsplit, which raises on what a signer may write ("https://[::1", a bracketed non-address).
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://([^/?#]*)([^?#]*)")
_PORT = re.compile(r":\d*$")
# git's scp-like syntax: [user@]host:path, with no "/" before the ":" (else it is a local path)
_SCP = re.compile(r"^(?:[^@/]*@)?([^:/]+):(.*)$")


def _trimmed(path: str) -> str:
    path = path.strip("/")
    path = path.removesuffix(".git")
    return path.rstrip("/").lower()


# Every evaluation with provenance and a review reads two names, the same few again and again;
# bounded, so signed names an attacker varies cannot grow it.
@lru_cache(maxsize=1024)
def repository_key(name: str) -> str:
    """``host/path`` of a remote repository, or ``path:/…`` of a local one (never raises: the
    name is signed text, any string)."""
    text = name.strip()
    url = _URL.match(text)
    if url is not None:
        scheme, authority, path = url.groups()
        if scheme.lower() == "file":
            return "path:/" + _trimmed(unquote(path))
        # the login and the port: ssh on :22 and https name one repository
        host = _PORT.sub("", authority.rpartition("@")[2])
        return f"{host.lower()}/{_trimmed(unquote(path))}"
    scp = _SCP.match(text)
    if scp is not None and len(scp.group(1)) > 1:  # "C:\\…" is a drive, not a host
        return f"{scp.group(1).lower()}/{_trimmed(scp.group(2))}"
    return "path:/" + _trimmed(text)


def repository_glob_key(glob: str) -> str:
    """``repository_key`` of a policy's repository glob, where a glob may also be written as
    ``host/path`` with no scheme (``github.com/acme/*``)."""
    text = glob.strip()
    if text.startswith("/") or _URL.match(text) or _SCP.match(text):
        return repository_key(text)
    return repository_key("https://" + text)
