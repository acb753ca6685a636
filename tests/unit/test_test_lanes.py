"""Every test file that starts the private Sigstore is one the session builds its binaries for.

A file left out of ``binary_builds.SIGSTORE_TESTS`` runs in lane 2 (``lanes.py``), whose session
builds nothing: on a machine whose cache lacks the binaries (CI's, after a pin moves) each of its
tests errors, while a warm machine passes. This reads the suite's own files, so the next such
file fails here, on every machine.
"""

from __future__ import annotations

from pathlib import Path

from binary_builds import SIGSTORE_TESTS, SIGSTORE_USES

TESTS = Path(__file__).resolve().parents[1]
HELPERS = ("binary_builds.py", "keyless_sigstore.py")  # where the uses are defined


def _covered(path: Path) -> bool:
    posix = "tests/" + path.relative_to(TESTS).as_posix()
    return any(posix == p or (p.endswith("/") and posix.startswith(p)) for p in SIGSTORE_TESTS)


def test_every_file_that_starts_the_private_sigstore_is_listed() -> None:
    users = [
        path
        for path in sorted(TESTS.rglob("*.py"))
        if path.name not in HELPERS and any(use in path.read_text() for use in SIGSTORE_USES)
    ]
    assert len(users) >= 3  # the admission, certified-source and keyless files at least
    unlisted = [str(path.relative_to(TESTS)) for path in users if not _covered(path)]
    assert unlisted == [], f"add these to tests/binary_builds.py SIGSTORE_TESTS: {unlisted}"


def test_every_listed_path_exists() -> None:
    missing = [p for p in SIGSTORE_TESTS if not (TESTS.parent / p).exists()]
    assert missing == []
