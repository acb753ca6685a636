"""Trust tiers (default map, .affidavit/tiers.yaml at the base revision, --tiers) and the ``affidavit collect
provenance`` command end to end, with its output validated against the ai-provenance/v1 schema.
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
from affidavit.collect import collect_provenance, default_tiers
from affidavit.collect.tiers import DEFAULT_TIERS_TEXT
from affidavit.errors import InputError

ROOT = Path(__file__).resolve().parents[3]
SCHEMA = json.loads((ROOT / "attestations/ai-provenance/v1/schema.json").read_text("utf-8"))

REPO_TIERS = b"""tiers:
  - tier: regulated
    paths: ["src/ledger/**"]
  - tier: low
    paths: ["src/ledger/fixtures/**", "*.txt"]
default: normal
"""


def _validate(document: object) -> None:
    jsonschema.Draft202012Validator(
        SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    ).validate(document)


@pytest.mark.parametrize(
    ("path", "tier"),
    [
        ("src/auth/token.py", "critical"),
        ("app/login.py", "critical"),
        ("lib/oauth/client.go", "critical"),
        ("pkg/crypto_utils.py", "critical"),
        ("db/migrations/0001_init.sql", "critical"),
        ("services/billing/invoice.py", "critical"),
        ("src/payments/api.py", "critical"),
        ("web/session_store.ts", "critical"),
        ("docs/security.md", "critical"),
        ("docs/intro.md", "low"),
        ("README.md", "low"),
        ("tests/test_api.py", "low"),
        ("pkg/tests/helpers.py", "low"),
        ("src/author.py", "standard"),
        ("src/api.py", "standard"),
    ],
)
def test_default_tier_map(path: str, tier: str) -> None:
    assert default_tiers().tier_of(path) == tier


def test_repository_tier_map_at_base_first_match_wins(make_repo: Callable[[str], Repo]) -> None:
    repo = make_repo("tiers")
    base = repo.commit("initial", {"a.md": "a\n", ".affidavit/tiers.yaml": REPO_TIERS})
    repo.commit(
        "ledger\n\nCo-authored-by: Claude <noreply@anthropic.com>\n",
        {"src/ledger/post.py": "p\n", "src/ledger/fixtures/x.txt": "x\n", "src/auth/a.py": "a\n"},
    )
    predicate = collect_provenance(repo.path, base, "HEAD").to_wire()
    files = predicate["changes"][0]["files"]
    assert [(f["path"], f["tier"]) for f in files] == [
        ("src/auth/a.py", "normal"),
        ("src/ledger/fixtures/x.txt", "regulated"),
        ("src/ledger/post.py", "regulated"),
    ]
    assert predicate["collector"] == {
        "name": "affidavit",
        "version": predicate["collector"]["version"],
        "tiersDigest": "sha256:" + hashlib.sha256(REPO_TIERS).hexdigest(),
        "tiersSource": {"kind": "base-revision", "path": ".affidavit/tiers.yaml", "revision": base},
    }
    assert predicate["summary"]["tiersTouchedByAi"] == ["normal", "regulated"]
    # the whole history has no trusted side: the built-in map applies, and the commit that
    # added the map is itself a critical change
    whole = collect_provenance(repo.path, None, "HEAD").to_wire()
    assert [(f["path"], f["tier"]) for f in whole["changes"][0]["files"]] == [
        (".affidavit/tiers.yaml", "critical"),
        ("a.md", "low"),
    ]
    assert whole["changes"][1]["files"][0] == {
        "path": "src/auth/a.py",
        "tier": "critical",
        "linesAdded": 1,
        "linesDeleted": 0,
        "binary": False,
    }
    assert whole["collector"]["tiersDigest"] == (
        "sha256:" + hashlib.sha256(DEFAULT_TIERS_TEXT.encode()).hexdigest()
    )
    assert whole["collector"]["tiersSource"] == {"kind": "built-in"}


def test_invalid_tier_file_names_the_field(
    make_repo: Callable[[str], Repo], tmp_path: Path
) -> None:
    repo = make_repo("badtiers")
    repo.commit("initial", {"a.txt": "a\n"})
    bad = tmp_path / "tiers.yaml"
    bad.write_text("tiers:\n  - tier: critical\n    paths: []\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        collect_provenance(repo.path, None, "HEAD", tiers_file=bad)
    assert str(err.value) == (
        f"{bad}: invalid tier map at tiers.0.paths: List should have at least 1 item after "
        "validation, not 0\n"
        "  hint: expected 'tiers: [{tier: NAME, paths: [GLOB, ...]}, ...]' and optional 'default: NAME'"
    )


def test_cli_prints_schema_valid_predicate(
    make_repo: Callable[[str], Repo], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repo("cli")
    base = repo.commit("initial", {"README.md": "hi\n"})
    repo.commit(
        "login\n\nCo-authored-by: Claude <noreply@anthropic.com>\n", {"src/auth/login.py": "x\n"}
    )
    repo.commit("human\n\nAI-Assisted: no\n", {"docs/a.md": "a\n"})
    repo.commit("who knows", {"src/app.py": "y\n"})
    tiers = tmp_path / "tiers.yaml"
    tiers.write_text("tiers:\n  - tier: high\n    paths: ['src/**']\n", encoding="utf-8")
    rc = main(["collect", "provenance", "--repo", str(repo.path), "--base", base, "--head", "main"])
    assert rc == 0
    printed = json.loads(capsys.readouterr().out)
    _validate(printed)
    assert printed["source"]["ref"] == "refs/heads/main"
    assert printed["source"]["baseRevision"] == base
    assert printed["summary"] == {
        "commits": 3,
        "aiTouchedCommits": 1,
        "undeclaredCommits": 1,
        "traceabilityCoverage": 0.6667,
        "tools": ["Claude Code"],
        "tiersTouchedByAi": ["critical"],
    }
    out = tmp_path / "p.json"
    args = ["collect", "provenance", "--repo", str(repo.path), "--head", "main"]
    rc = main([*args, "--tiers", str(tiers), "--output", str(out)])
    assert rc == 0
    written = json.loads(out.read_text("utf-8"))
    _validate(written)
    assert written["changes"][1]["files"][0]["tier"] == "high"
    assert written["collector"]["tiersDigest"] == (
        "sha256:" + hashlib.sha256(tiers.read_bytes()).hexdigest()
    )
    assert written["collector"]["tiersSource"] == {"kind": "file", "path": str(tiers)}


def test_cli_bad_revision_exit_code(
    make_repo: Callable[[str], Repo], capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repo("clibad")
    repo.commit("initial", {"a.txt": "a\n"})
    rc = main(["collect", "provenance", "--repo", str(repo.path), "--head", "nope"])
    assert rc == 3
    assert capsys.readouterr().err == (
        f"error: revision 'nope' is not a commit in {repo.path}\n"
        "  hint: fetch it (git fetch --unshallow or git fetch origin <ref>) or pass an existing revision\n"
    )


def test_example_validates() -> None:
    _validate(json.loads((ROOT / "attestations/ai-provenance/v1/example.json").read_text("utf-8")))
