"""The change does not decide its own review: tiers come from the base revision's map.

The attack (issue 7, item 9): an AI commit edits ``src/auth/login.py`` and, in the same commit,
drops ``src/auth/**`` from ``critical`` in ``.affidavit/tiers.yaml``. Read at head, the map would
make the login change ``standard`` and let it in unreviewed. Classified with the map of the base
revision (the trusted side), it stays ``critical``, and the edit of the map is ``critical`` too.
Real git repositories, the real collector and the ``affidavit collect provenance`` command.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest
from collect_gitrepo import Repo

from affidavit.cli.main import main
from affidavit.collect import collect_provenance

ROOT = Path(__file__).resolve().parents[3]
SCHEMA = json.loads((ROOT / "attestations/ai-provenance/v1/schema.json").read_text("utf-8"))
CLAUDE = "\n\nCo-authored-by: Claude <noreply@anthropic.com>\n"

STRICT = b"""tiers:
  - tier: critical
    paths: ["src/auth/**", "src/payments/**"]
  - tier: low
    paths: ["docs/**"]
default: standard
"""
RELAXED = b"""tiers:
  - tier: critical
    paths: ["src/payments/**"]
  - tier: low
    paths: ["docs/**"]
default: standard
"""


def _sha(raw: bytes) -> str:
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def _released(make_repo: Callable[[str], Repo]) -> tuple[Repo, str]:
    """A repository whose released base has the strict map and a login module."""
    repo = make_repo("shop")
    base = repo.commit(
        "release 1.0",
        {".affidavit/tiers.yaml": STRICT, "src/auth/login.py": "def login(): ...\n"},
    )
    return repo, base


def _tiers(predicate: dict[str, object], n: int = 0) -> list[tuple[str, str]]:
    changes = predicate["changes"]
    assert isinstance(changes, list)
    return [(f["path"], f["tier"]) for f in changes[n]["files"]]


def test_ai_commit_that_relaxes_the_map_is_classified_by_the_base_map(
    make_repo: Callable[[str], Repo],
) -> None:
    repo, base = _released(make_repo)
    repo.commit(
        "login: skip the password check" + CLAUDE,
        {".affidavit/tiers.yaml": RELAXED, "src/auth/login.py": "def login(): return True\n"},
    )
    predicate = collect_provenance(repo.path, base, "HEAD").to_wire()
    jsonschema.Draft202012Validator(SCHEMA).validate(predicate)
    assert predicate["changes"][0]["aiInvolvement"] == "assisted"
    assert _tiers(predicate) == [
        (".affidavit/tiers.yaml", "critical"),
        ("src/auth/login.py", "critical"),
    ]
    assert predicate["summary"]["tiersTouchedByAi"] == ["critical"]
    assert predicate["collector"]["tiersDigest"] == _sha(STRICT)
    assert predicate["collector"]["tiersSource"] == {
        "kind": "base-revision",
        "path": ".affidavit/tiers.yaml",
        "revision": base,
    }


def test_the_relaxed_map_applies_only_once_it_is_the_base(
    make_repo: Callable[[str], Repo],
) -> None:
    repo, _ = _released(make_repo)
    relaxed = repo.commit("tiers: auth is standard now", {".affidavit/tiers.yaml": RELAXED})
    repo.commit("login" + CLAUDE, {"src/auth/login.py": "def login(): return True\n"})
    predicate = collect_provenance(repo.path, relaxed, "HEAD").to_wire()
    assert _tiers(predicate) == [("src/auth/login.py", "standard")]
    assert predicate["collector"]["tiersDigest"] == _sha(RELAXED)
    assert predicate["collector"]["tiersSource"]["revision"] == relaxed


@pytest.mark.parametrize("how", ["edit", "delete", "rename"])
def test_any_change_to_the_map_itself_is_critical(
    make_repo: Callable[[str], Repo], how: str
) -> None:
    repo, base = _released(make_repo)
    if how == "edit":
        repo.commit("tiers" + CLAUDE, {".affidavit/tiers.yaml": STRICT + b"# note\n"})
        expected = [(".affidavit/tiers.yaml", "critical")]
    elif how == "delete":
        repo.git("rm", "-q", ".affidavit/tiers.yaml")
        repo.commit("drop tiers" + CLAUDE)
        expected = [(".affidavit/tiers.yaml", "critical")]
    else:
        repo.git("mv", ".affidavit/tiers.yaml", ".affidavit/tiers.old.yaml")
        repo.commit("move tiers" + CLAUDE)
        expected = [(".affidavit/tiers.old.yaml", "critical")]
    predicate = collect_provenance(repo.path, base, "HEAD").to_wire()
    assert _tiers(predicate) == expected
    assert predicate["summary"]["tiersTouchedByAi"] == ["critical"]


def test_a_map_that_puts_itself_in_a_low_tier_is_still_critical(
    make_repo: Callable[[str], Repo], tmp_path: Path
) -> None:
    repo, base = _released(make_repo)
    repo.commit("tiers" + CLAUDE, {".affidavit/tiers.yaml": STRICT + b"# note\n"})
    lenient = tmp_path / "lenient.yaml"
    lenient.write_bytes(b"tiers:\n  - tier: low\n    paths: ['**']\n")
    predicate = collect_provenance(repo.path, base, "HEAD", tiers_file=lenient).to_wire()
    assert _tiers(predicate) == [(".affidavit/tiers.yaml", "critical")]
    assert predicate["collector"]["tiersSource"] == {"kind": "file", "path": str(lenient)}


def test_cli_records_the_base_map(
    make_repo: Callable[[str], Repo], capsys: pytest.CaptureFixture[str]
) -> None:
    repo, base = _released(make_repo)
    repo.commit(
        "login" + CLAUDE,
        {".affidavit/tiers.yaml": RELAXED, "src/auth/login.py": "def login(): return True\n"},
    )
    args = ["collect", "provenance", "--repo", str(repo.path), "--base", base, "--head", "main"]
    assert main(args) == 0
    printed = json.loads(capsys.readouterr().out)
    jsonschema.Draft202012Validator(SCHEMA).validate(printed)
    assert _tiers(printed) == [
        (".affidavit/tiers.yaml", "critical"),
        ("src/auth/login.py", "critical"),
    ]
    assert printed["collector"]["tiersSource"] == {
        "kind": "base-revision",
        "path": ".affidavit/tiers.yaml",
        "revision": base,
    }


LOGIN = "".join(f"def check_{n}(user): return user.ok_{n}\n" for n in range(20))


@pytest.mark.parametrize(
    ("new_path", "tiers"),
    [
        ("docs/login.py", ["critical", "low"]),  # out of critical into low
        ("src/login.py", ["critical", "standard"]),  # out of critical into the default
    ],
)
def test_an_ai_rename_out_of_a_critical_path_still_touches_critical(
    make_repo: Callable[[str], Repo], new_path: str, tiers: list[str]
) -> None:
    """Rename detection (-M) made a moved file one entry classified by its new path only: an AI
    commit that moved src/auth/login.py to docs/ (and changed it on the way) touched only
    ``low``, and the critical tier's review never applied. Without -M git shows the same commit
    as a deletion in src/auth/, which is critical."""
    repo = make_repo("shop")
    base = repo.commit(
        "release 1.0",
        {".affidavit/tiers.yaml": STRICT, "src/auth/login.py": LOGIN, "docs/index.md": "hi\n"},
    )
    repo.git("mv", "src/auth/login.py", new_path)
    changed = LOGIN.replace("user.ok_3", "True")
    repo.commit("move login" + CLAUDE, {new_path: changed})
    predicate = collect_provenance(repo.path, base, "HEAD").to_wire()
    jsonschema.Draft202012Validator(SCHEMA).validate(predicate)
    files = predicate["changes"][0]["files"]
    assert [(f["path"], f["tier"], f.get("previousPath")) for f in files] == [
        (new_path, tiers[1], "src/auth/login.py"),
        ("src/auth/login.py", "critical", None),
    ]
    assert files[0]["linesAdded"] == files[0]["linesDeleted"] == 1
    assert files[1]["linesAdded"] == files[1]["linesDeleted"] == 0
    assert predicate["summary"]["tiersTouchedByAi"] == tiers


@pytest.mark.parametrize(
    "path",
    ["src/auth/login\n.py", "db/migrations/0002_grant\n.sql", "src/auth/\nlegacy/token.py"],
    ids=["file", "migration", "directory"],
)
def test_a_newline_in_a_path_does_not_leave_the_critical_tier(
    make_repo: Callable[[str], Repo], path: str
) -> None:
    """``**`` compiled to ``.*``, which stops at a newline: a file named with one inside
    src/auth/ or db/migrations/ (a migration runner loads every file there) was ``standard``."""
    repo = make_repo("shop")
    base = repo.commit("release 1.0", {"README.md": "shop\n"})  # no map: the default applies
    repo.commit("add" + CLAUDE, {path: "GRANT ALL ON users TO app;\n"})
    predicate = collect_provenance(repo.path, base, "HEAD").to_wire()
    assert _tiers(predicate) == [(path, "critical")]


def test_an_ai_bump_of_a_submodule_at_a_critical_path_is_critical(
    make_repo: Callable[[str], Repo],
) -> None:
    """A submodule is one numstat line for its own path (``src/auth``), which ``**/auth/**``
    did not match: bumping a vendored auth submodule to AI-written code was ``standard``."""
    lib = make_repo("auth-lib")
    old = lib.commit("auth 1.0", {"login.py": "def login(): ...\n"})
    new = lib.commit("auth 1.1" + CLAUDE, {"login.py": "def login(): return True\n"})
    repo = make_repo("shop")
    repo.git("update-index", "--add", "--cacheinfo", f"160000,{old},src/auth")
    repo.git("update-index", "--add", "--cacheinfo", f"160000,{old},vendor/tests")
    base = repo.commit("release 1.0", {".affidavit/tiers.yaml": STRICT})
    repo.git("update-index", "--cacheinfo", f"160000,{new},src/auth")
    repo.git("update-index", "--cacheinfo", f"160000,{new},vendor/tests")
    repo.commit("bump auth" + CLAUDE)
    predicate = collect_provenance(repo.path, base, "HEAD").to_wire()
    assert _tiers(predicate) == [("src/auth", "critical"), ("vendor/tests", "standard")]
    assert predicate["summary"]["tiersTouchedByAi"] == ["critical", "standard"]


def test_a_folder_named_without_a_glob_covers_what_is_under_it(
    make_repo: Callable[[str], Repo],
) -> None:
    """``src/auth`` and ``migrations`` name folders, as a .gitignore line would: an AI change
    under them is critical, not the default tier (it was, silently, when only ``/**`` did)."""
    repo = make_repo("folders")
    folders = b'tiers:\n  - tier: critical\n    paths: ["src/auth", "migrations"]\ndefault: low\n'
    base = repo.commit("release", {".affidavit/tiers.yaml": folders, "README": "x\n"})
    repo.commit(
        "login and schema" + CLAUDE,
        {"src/auth/login.py": "def login(): ...\n", "db/migrations/001.sql": "create table t;\n",
         "src/authz.py": "x = 1\n"},
    )  # fmt: skip
    predicate = collect_provenance(repo.path, base, "HEAD").to_wire()
    assert sorted(_tiers(predicate)) == [
        ("db/migrations/001.sql", "critical"),
        ("src/auth/login.py", "critical"),
        ("src/authz.py", "low"),  # a name that starts like the folder is not under it
    ]
