"""A keyless signer's subject pattern that a stranger's workflow also matches.

On github.com and gitlab.com anyone can create an organisation or group, and the public Fulcio
certifies their workflows like any other. A pattern that does not end the owner's name
(``https://github\\.com/acme.*``, ``https://github\\.com/.*/payments/…``) therefore trusts
``acme-intruder``'s workflows too: their certificates name their own repository, so
``certifiedSource`` holds, and their own second account can approve the review. Nothing in the
request shows it; the pattern is the policy author's, so it is said in the policy's status.

Deciding what a regular expression can match is hard in general, so this only reports what it
can show: an example subject the pattern matches (built from the pattern itself), with its
owner replaced by a stranger's, that the pattern still matches whole. A pattern it cannot
build an example for is not reported; nothing here changes what is admitted.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

from affidavit.policy.signer_model import Signers

# The parser the re module itself uses (Python 3.11+; typeshed does not describe it).
_p: Any = importlib.import_module("re._parser")
_c: Any = importlib.import_module("re._constants")

#: Issuers of public forges, where anyone can create an owner, and the base of their subjects.
PUBLIC_FORGES = {
    "https://token.actions.githubusercontent.com": "https://github.com/",
    "https://gitlab.com": "https://gitlab.com/",
}
#: What follows the owner in a typical subject of each forge's workflows.
_TYPICAL_TAIL = {
    "https://github.com/": "/app/.github/workflows/release.yml@refs/heads/main",
    "https://gitlab.com/": "/app//.gitlab-ci.yml@refs/heads/main",
}
STRANGER = "intruder"
_MAX_EXAMPLE = 2048
# the characters an example is built from, in the order they are tried
_CANDIDATES = "abcdefghijklmnopqrstuvwxyz0123456789-_.ABCDEFGHIJKLMNOPQRSTUVWXYZ/@:~+"


def _in_category(ch: str, category: Any) -> bool | None:
    tests = {
        _c.CATEGORY_DIGIT: ch.isdigit(),
        _c.CATEGORY_NOT_DIGIT: not ch.isdigit(),
        _c.CATEGORY_WORD: ch.isalnum() or ch == "_",
        _c.CATEGORY_NOT_WORD: not (ch.isalnum() or ch == "_"),
        _c.CATEGORY_SPACE: ch.isspace(),
        _c.CATEGORY_NOT_SPACE: not ch.isspace(),
    }
    return tests.get(category)


def _char_in(items: list[tuple[Any, Any]]) -> str | None:
    """A character an ``IN`` set accepts (a lower-case letter or digit when it can)."""
    negate = any(op is _c.NEGATE for op, _ in items)
    for op, _av in items:
        if op not in (_c.NEGATE, _c.LITERAL, _c.RANGE, _c.CATEGORY):
            return None

    def inside(ch: str) -> bool | None:
        for op, av in items:
            if op is _c.LITERAL and ch == chr(av):
                return True
            if op is _c.RANGE and av[0] <= ord(ch) <= av[1]:
                return True
            if op is _c.CATEGORY:
                hit = _in_category(ch, av)
                if hit is None:
                    return None
                if hit:
                    return True
        return False

    for ch in _CANDIDATES:
        hit = inside(ch)
        if hit is None:
            return None
        if hit != negate:
            return ch
    return None


def _example(items: Any) -> str | None:
    """The shortest-looking string the parsed pattern ``items`` matches, or None if a construct
    is beyond this simple builder (back references, lookarounds, ...)."""
    out: list[str] = []
    for op, av in items:
        if op is _c.LITERAL:
            out.append(chr(av))
        elif op is _c.NOT_LITERAL:
            out.append("a" if chr(av) != "a" else "b")
        elif op is _c.ANY:
            out.append("a")
        elif op is _c.IN:
            ch = _char_in(list(av))
            if ch is None:
                return None
            out.append(ch)
        elif op in (_c.MAX_REPEAT, _c.MIN_REPEAT, getattr(_c, "POSSESSIVE_REPEAT", None)):
            low, _high, sub = av
            part = _example(sub)
            if part is None or len(part) * low > _MAX_EXAMPLE:
                return None
            out.append(part * low)  # as few as allowed: ``acme.*`` gives the owner ``acme``
        elif op is _c.SUBPATTERN:
            part = _example(av[-1])
            if part is None:
                return None
            out.append(part)
        elif op is _c.BRANCH:
            part = _example(av[1][0])
            if part is None:
                return None
            out.append(part)
        elif op is _c.AT:
            continue
        else:
            return None
        if sum(map(len, out)) > _MAX_EXAMPLE:
            return None
    return "".join(out)


def stranger_subject(issuer: str, pattern: str) -> str | None:
    """A subject of a stranger's workflow on a public forge that ``pattern`` matches whole, or
    None when none was found (another issuer, a pinned owner, or a pattern too intricate)."""
    base = PUBLIC_FORGES.get(issuer.rstrip("/"))
    if base is None:
        return None
    try:
        compiled = re.compile(pattern)
        example = _example(_p.parse(pattern))
    except (re.error, RecursionError, OverflowError):
        return None
    probes = []
    if example is not None and example.startswith(base) and compiled.fullmatch(example):
        owner, slash, rest = example[len(base) :].partition("/")
        tail = slash + rest if slash else _TYPICAL_TAIL[base]
        # an owner named like this one's (``acme-intruder``), then any owner at all
        probes += [base + f"{owner}-{STRANGER}" + tail] if owner else []
        probes.append(base + STRANGER + tail)
    probes.append(base + STRANGER + _TYPICAL_TAIL[base])  # a pattern such as ``.*``
    return next((probe for probe in probes if compiled.fullmatch(probe)), None)


def stranger_finding(name: str, issuer: str, pattern: str) -> str | None:
    """What a keyless signer ``name`` trusting ``pattern`` under ``issuer`` also trusts, with the
    fix, or None when no stranger's subject was found."""
    probe = stranger_subject(issuer, pattern)
    if probe is None:
        return None
    base = PUBLIC_FORGES[issuer.rstrip("/")]
    return (
        f"keyless signer {name}'s subjectRegExp {pattern} (issuer {issuer}) also matches "
        f"{probe}, a workflow of an owner anyone can create on "
        f"{base.removeprefix('https://').rstrip('/')}: end the owner's name with a `/` in the "
        f"pattern (`{re.escape(base)}acme/…`)"
    )


def open_signers(signers: Signers) -> str | None:
    """Why the keyless signers of a policy's ``signers`` trust strangers' workflows, or None."""
    found = [
        finding
        for k in signers.keyless
        if k.subject_reg_exp
        and (finding := stranger_finding(k.name, k.issuer, k.subject_reg_exp)) is not None
    ]
    return "; ".join(found) or None
