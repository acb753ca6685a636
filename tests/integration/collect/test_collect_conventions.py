"""collect_provenance on a real repository with one commit per AI-marking convention.

Each commit uses one convention as the tool writes it (Claude Code, Codex, aider, Copilot, Cursor,
Jules, Devin, Amazon Q, Assisted-by, Made-with, Generated-by, AI-Assisted declarations); the test
asserts the exact classification, the exact evidence text, the tools and who accepted the change.
Also: an unknown co-author's line outside the last paragraph is not evidence, a known AI
co-author's is (a squash leaves it there, under a human declaration), and --tools extends the
registry.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from collect_gitrepo import HUMAN, Repo

from affidavit.collect import collect_provenance, load_registry

COPILOT_BOT = ("copilot-swe-agent[bot]", "198982749+Copilot@users.noreply.github.com")
JULES_BOT = ("google-labs-jules[bot]", "161369871+google-labs-jules[bot]@users.noreply.github.com")
DEVIN_BOT = (
    "devin-ai-integration[bot]",
    "158243242+devin-ai-integration[bot]@users.noreply.github.com",
)
AMAZON_Q_BOT = (
    "amazon-q-developer[bot]",
    "208079219+amazon-q-developer[bot]@users.noreply.github.com",
)
AIDER_AUTHOR = ("Alice Human (aider)", "alice@example.com")
ALICE = {"name": HUMAN[0], "email": HUMAN[1]}

# subject -> (body, author, committer, involvement, evidence, tools, acceptedBy)
CASES: dict[str, tuple[str, tuple[str, str], tuple[str, str], str, list[Any], list[Any], Any]] = {
    "claude new": (
        "Co-Authored-By: Claude Opus 4.6 <noreply@anthropic.com>",
        HUMAN,
        HUMAN,
        "assisted",
        [("trailer", "Co-Authored-By: Claude Opus 4.6 <noreply@anthropic.com>")],
        [{"name": "Claude Code", "model": "Claude Opus 4.6"}],
        ALICE,
    ),
    "claude old": (
        "Co-authored-by: Claude <noreply@anthropic.com>",
        HUMAN,
        HUMAN,
        "assisted",
        [("trailer", "Co-authored-by: Claude <noreply@anthropic.com>")],
        [{"name": "Claude Code"}],
        ALICE,
    ),
    "claude session": (
        "Claude-Session: https://claude.ai/code/session_01",
        HUMAN,
        HUMAN,
        "assisted",
        [("trailer", "Claude-Session: https://claude.ai/code/session_01")],
        [{"name": "Claude Code"}],
        ALICE,
    ),
    "codex": (
        "Co-authored-by: Codex <noreply@openai.com>",
        HUMAN,
        HUMAN,
        "assisted",
        [("trailer", "Co-authored-by: Codex <noreply@openai.com>")],
        [{"name": "Codex"}],
        ALICE,
    ),
    "aider coauthor": (
        "Co-authored-by: aider (openai/gpt-4o) <aider@aider.chat>",
        HUMAN,
        HUMAN,
        "assisted",
        [("trailer", "Co-authored-by: aider (openai/gpt-4o) <aider@aider.chat>")],
        [{"name": "aider", "model": "openai/gpt-4o"}],
        ALICE,
    ),
    "aider noreply": (
        "Co-authored-by: aider (claude-sonnet-4) <noreply@aider.chat>",
        HUMAN,
        HUMAN,
        "assisted",
        [("trailer", "Co-authored-by: aider (claude-sonnet-4) <noreply@aider.chat>")],
        [{"name": "aider", "model": "claude-sonnet-4"}],
        ALICE,
    ),
    "aider noreply at aider.dev (2025 on)": (
        "Co-authored-by: aider (anthropic/claude-sonnet-4-20250514) <noreply@aider.dev>",
        HUMAN,
        HUMAN,
        "assisted",
        [
            (
                "trailer",
                "Co-authored-by: aider (anthropic/claude-sonnet-4-20250514) <noreply@aider.dev>",
            )
        ],
        [{"name": "aider", "model": "anthropic/claude-sonnet-4-20250514"}],
        ALICE,
    ),
    "aider author": (
        "",
        AIDER_AUTHOR,
        AIDER_AUTHOR,
        "generated",
        [
            ("identity", "author: Alice Human (aider) <alice@example.com>"),
            ("identity", "committer: Alice Human (aider) <alice@example.com>"),
        ],
        [{"name": "aider"}],
        ALICE,
    ),
    "aider committer only": (
        "",
        HUMAN,
        AIDER_AUTHOR,
        "assisted",
        [("identity", "committer: Alice Human (aider) <alice@example.com>")],
        [{"name": "aider"}],
        ALICE,
    ),
    "copilot bot": (
        "Co-authored-by: Alice Human <alice@example.com>",
        COPILOT_BOT,
        HUMAN,
        "generated",
        [("identity", f"author: {COPILOT_BOT[0]} <{COPILOT_BOT[1]}>")],
        [{"name": "GitHub Copilot"}],
        ALICE,
    ),
    "copilot editor": (
        "Co-authored-by: Copilot <copilot@github.com>",
        HUMAN,
        HUMAN,
        "assisted",
        [("trailer", "Co-authored-by: Copilot <copilot@github.com>")],
        [{"name": "GitHub Copilot"}],
        ALICE,
    ),
    "cursor made-with": (
        "Made-with: Cursor",
        HUMAN,
        HUMAN,
        "assisted",
        [("trailer", "Made-with: Cursor")],
        [{"name": "Cursor"}],
        ALICE,
    ),
    "cursor agent": (
        "Co-authored-by: Cursor Agent <cursoragent@cursor.com>",
        HUMAN,
        HUMAN,
        "assisted",
        [("trailer", "Co-authored-by: Cursor Agent <cursoragent@cursor.com>")],
        [{"name": "Cursor"}],
        ALICE,
    ),
    "jules": (
        "",
        JULES_BOT,
        ("GitHub", "noreply@github.com"),
        "generated",
        [("identity", f"author: {JULES_BOT[0]} <{JULES_BOT[1]}>")],
        [{"name": "Jules"}],
        None,
    ),
    "devin": (
        "",
        DEVIN_BOT,
        DEVIN_BOT,
        "generated",
        [
            ("identity", f"author: {DEVIN_BOT[0]} <{DEVIN_BOT[1]}>"),
            ("identity", f"committer: {DEVIN_BOT[0]} <{DEVIN_BOT[1]}>"),
        ],
        [{"name": "Devin"}],
        None,
    ),
    "amazon q": (
        "",
        AMAZON_Q_BOT,
        HUMAN,
        "generated",
        [("identity", f"author: {AMAZON_Q_BOT[0]} <{AMAZON_Q_BOT[1]}>")],
        [{"name": "Amazon Q Developer"}],
        ALICE,
    ),
    "kernel assisted-by": (
        "Assisted-by: Claude:claude-3-opus coccinelle sparse\nSigned-off-by: Alice Human <alice@example.com>",
        HUMAN,
        HUMAN,
        "assisted",
        [("trailer", "Assisted-by: Claude:claude-3-opus coccinelle sparse")],
        [{"name": "Claude Code", "model": "claude-3-opus"}],
        ALICE,
    ),
    "fedora assisted-by": (
        "assisted-by: ChatGPT 4o",
        HUMAN,
        HUMAN,
        "assisted",
        [("trailer", "assisted-by: ChatGPT 4o")],
        [{"name": "ChatGPT 4o"}],
        ALICE,
    ),
    "generated-by": (
        "Generated-by: Claude Code",
        HUMAN,
        HUMAN,
        "generated",
        [("trailer", "Generated-by: Claude Code")],
        [{"name": "Claude Code"}],
        ALICE,
    ),
    "declared yes": (
        "AI-Assisted: yes",
        HUMAN,
        HUMAN,
        "assisted",
        [("declaration", "AI-Assisted: yes")],
        [],
        ALICE,
    ),
    "declared no": (
        "AI-Assisted: no",
        HUMAN,
        HUMAN,
        "none",
        [("declaration", "AI-Assisted: no")],
        [],
        None,
    ),
    "declared no but claude": (
        "AI-Assisted: no\nCo-authored-by: Claude <noreply@anthropic.com>",
        HUMAN,
        HUMAN,
        "assisted",
        [
            ("declaration", "AI-Assisted: no"),
            ("trailer", "Co-authored-by: Claude <noreply@anthropic.com>"),
        ],
        [{"name": "Claude Code"}],
        ALICE,
    ),
    "claude footer, trailer deleted, declared no": (
        "🤖 Generated with [Claude Code](https://claude.com/claude-code)\n\nAI-Assisted: no",
        HUMAN,
        HUMAN,
        "assisted",
        [
            (
                "identity",
                "message: 🤖 Generated with [Claude Code](https://claude.com/claude-code)",
            ),
            ("declaration", "AI-Assisted: no"),
        ],
        [{"name": "Claude Code"}],
        ALICE,
    ),
    "no signal": (
        "Signed-off-by: Alice Human <alice@example.com>",
        HUMAN,
        HUMAN,
        "unknown",
        [],
        [],
        None,
    ),
    "not last paragraph": (  # an unknown co-author there is text
        "Co-authored-by: Alice Human <alice@example.com>\n\nThis paragraph ends the message.",
        HUMAN,
        HUMAN,
        "unknown",
        [],
        [],
        None,
    ),
    # `git rebase -i` squashed an AI commit into a human one: its trailer is in the body now,
    # and the human commit's declaration is the message's only trailer
    "squashed over a human declaration": (
        "Co-authored-by: Codex <noreply@openai.com>\n\nfix the tests by hand\n\nAI-Assisted: no",
        HUMAN,
        HUMAN,
        "assisted",
        [
            ("declaration", "AI-Assisted: no"),
            ("identity", "message: Co-authored-by: Codex <noreply@openai.com>"),
        ],
        [{"name": "Codex"}],
        ALICE,
    ),
    # `git merge --squash` indents each squashed commit's message by four spaces
    "merge squash": (
        "Squashed commit of the following:\n\ncommit 0123abcd\n\n    add login\n\n"
        "    Co-Authored-By: Claude Opus 4.6 <noreply@anthropic.com>\n\nAI-Assisted: no",
        HUMAN,
        HUMAN,
        "assisted",
        [
            ("declaration", "AI-Assisted: no"),
            ("identity", "message: Co-Authored-By: Claude Opus 4.6 <noreply@anthropic.com>"),
        ],
        [{"name": "Claude Code", "model": "Claude Opus 4.6"}],
        ALICE,
    ),
}


@pytest.fixture(scope="module")
def collected(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    repo = Repo(tmp_path_factory.mktemp("conventions"))
    base = repo.commit("initial", {"README.md": "hello\n"})
    for i, (subject, (body, author, committer, *_rest)) in enumerate(CASES.items()):
        message = f"{subject}\n\n{body}\n" if body else f"{subject}\n"
        repo.commit(message, {f"src/f{i}.py": f"x = {i}\n"}, author=author, committer=committer)
    repo.commit("aider: add the parser\n", {"src/parser.py": "p = 1\n"})
    wire = collect_provenance(repo.path, base, "HEAD").to_wire()
    return {c["commit"]: c for c in wire["changes"]} | {"_summary": wire["summary"]}


@pytest.mark.parametrize("subject", list(CASES))
def test_each_convention_is_classified_with_its_evidence(
    collected: dict[str, dict[str, Any]], subject: str
) -> None:
    _body, _author, _committer, involvement, evidence, tools, accepted = CASES[subject]
    index = list(CASES).index(subject)
    changes = [c for k, c in collected.items() if k != "_summary"]
    change = changes[index]
    assert change["files"][0]["path"] == f"src/f{index}.py"
    assert change["aiInvolvement"] == involvement
    assert [(e["kind"], e["detail"]) for e in change["evidence"]] == evidence
    assert change["tools"] == tools
    assert change.get("acceptedBy") == accepted
    if accepted is not None:
        assert change["acceptedAt"] == change["committedAt"]


def test_subject_prefix_marks_aider_generated(collected: dict[str, dict[str, Any]]) -> None:
    last = [c for k, c in collected.items() if k != "_summary"][-1]
    assert last["aiInvolvement"] == "generated"
    assert last["evidence"] == [{"kind": "identity", "detail": "subject: aider: add the parser"}]
    assert last["tools"] == [{"name": "aider"}]


def test_summary_counts_and_tools(collected: dict[str, dict[str, Any]]) -> None:
    summary = collected["_summary"]
    total = len(CASES) + 1
    unknown = sum(1 for c in CASES.values() if c[3] == "unknown")
    none = sum(1 for c in CASES.values() if c[3] == "none")
    assert summary["commits"] == total
    assert summary["undeclaredCommits"] == unknown == 2  # "no trailers", "not last paragraph"
    assert summary["aiTouchedCommits"] == total - unknown - none
    assert summary["traceabilityCoverage"] == round((total - unknown) / total, 4)
    assert summary["tools"] == [
        "Amazon Q Developer",
        "ChatGPT 4o",
        "Claude Code",
        "Codex",
        "Cursor",
        "Devin",
        "GitHub Copilot",
        "Jules",
        "aider",
    ]
    assert summary["tiersTouchedByAi"] == ["standard"]
    assert "aiLineShare" not in summary


def test_user_registry_extends_and_overrides(
    make_repo: Callable[[str], Repo], tmp_path: Path
) -> None:
    repo = make_repo("extend")
    base = repo.commit("initial", {"a.txt": "a\n"})
    repo.commit("windsurf\n\nCo-authored-by: Cascade <cascade@windsurf.com>\n", {"b.txt": "b\n"})
    repo.commit("codex\n\nCo-authored-by: Codex <noreply@openai.com>\n", {"c.txt": "c\n"})
    tools_file = tmp_path / "tools.yaml"
    tools_file.write_text(
        "tools:\n"
        "  - id: windsurf\n    name: Windsurf\n    emails: [cascade@windsurf.com]\n"
        "  - id: codex\n    name: OpenAI Codex CLI\n    emails: [noreply@openai.com]\n",
        encoding="utf-8",
    )
    plain = collect_provenance(repo.path, base, "HEAD").to_wire()["changes"]
    assert [c["aiInvolvement"] for c in plain] == ["unknown", "assisted"]
    extended = collect_provenance(repo.path, base, "HEAD", tools=load_registry(tools_file))
    changes = extended.to_wire()["changes"]
    assert [c["aiInvolvement"] for c in changes] == ["assisted", "assisted"]
    assert changes[0]["tools"] == [{"name": "Windsurf"}]
    assert changes[1]["tools"] == [{"name": "OpenAI Codex CLI"}]


def test_a_replace_ref_cannot_swap_the_message_of_an_ai_commit(
    make_repo: Callable[[str], Repo],
) -> None:
    """``git replace`` (refs/replace/*, a ref anyone who can push may push, and a mirror fetches)
    made git log show another commit's message and identities under the AI commit's own sha: the
    collector recorded the Claude commit as declared human."""
    repo = make_repo("replaced")
    base = repo.commit("initial", {"README.md": "hello\n"})
    ai = repo.commit(
        "login\n\nCo-authored-by: Claude <noreply@anthropic.com>\n", {"src/login.py": "x = 1\n"}
    )
    tree, parent = repo.git("rev-parse", f"{ai}^{{tree}}"), repo.git("rev-parse", f"{ai}^")
    clean = repo.git("commit-tree", tree, "-p", parent, "-m", "login\n\nAI-Assisted: no")
    repo.git("replace", ai, clean)
    assert "Claude" not in repo.git("log", "-1", "--format=%B", ai)  # what git shows now
    [change] = collect_provenance(repo.path, base, ai).to_wire()["changes"]
    assert (change["commit"], change["aiInvolvement"]) == (ai, "assisted")
    assert change["evidence"] == [
        {"kind": "trailer", "detail": "Co-authored-by: Claude <noreply@anthropic.com>"}
    ]
