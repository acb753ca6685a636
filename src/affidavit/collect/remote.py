"""A repository's URL as it may be signed and published: without the credentials in it.

Attestations are pushed beside the image, where whoever can pull it can read them, and they are
kept for years. A CI checkout often writes its token into the remote's URL (GitLab CI's
``https://gitlab-ci-token:<job token>@host/group/project.git``, the ``CI_REPOSITORY_URL`` a
pipeline may pass to ``--repository``, Jenkins' and Buildkite's clones with a personal access
token): recorded as is, the token went into the signed provenance or review. So the user and
password part of a URL with a scheme is dropped, whatever it holds (the host and path name the
repository; ``ssh://git@host/…`` loses only its login name). scp-like remotes (``git@host:path``)
and local paths carry no password and are kept as they are.
"""

from __future__ import annotations

import re

__all__ = ["public_url"]

# scheme "://" then everything up to the last "@" before the path, query or fragment (a
# password with a raw "@" is dropped whole); a "/" ends the authority, as git reads it too
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@")


def public_url(url: str) -> str:
    """``url`` without the ``user:password@`` of a URL with a scheme."""
    return _USERINFO.sub(r"\1", url, count=1)
