"""The webhook's one-pass conversion of a decision (``canonical_pair``) gives exactly
``dataclasses.asdict`` and the bytes of ``canonical_json``: the ledger's hashes must not depend on
which path wrote a decision. orjson writes some floats differently and refuses lone surrogates
and integers past 64 bits; those decisions must take ``json.dumps``."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from affidavit.ledger.canonical import canonical_json, canonical_pair, decision_to_dict
from affidavit.policy.decision import (
    AiInvolvement,
    Caller,
    Decision,
    ImageRef,
    Snapshot,
    ToolUse,
    Violation,
)


def _decision(share: float | None = 0.25, name: str = "web", **extra: Any) -> Decision:
    image = "registry.example/shop/web@sha256:" + "a" * 64
    return Decision(
        id="d-1",
        time="2026-03-01T10:00:00Z",
        cluster="prod-1",
        region="eu-west-1",
        namespace="shop",
        kind="Deployment",
        name=name,
        operation="CREATE",
        user="alice",
        outcome="denied",
        mode="Enforce",
        images=(ImageRef(image, "sha256:" + "a" * 64),),
        violations=(
            Violation("provenance.present", "AccountabilityPolicy/baseline", "none", "one", "fix"),
        ),
        snapshot=Snapshot(
            policy_index="sha256:" + "b" * 64,
            caller=Caller(authenticated=True, identity="kube-apiserver"),
            images=(
                AiInvolvement(
                    image=image,
                    digest="sha256:" + "a" * 64,
                    provenance="sha256:" + "c" * 64,
                    commits=3,
                    assisted=1,
                    tools=(ToolUse("aider", None, 1),),
                    tiers=("critical",),
                    ai_line_share=share,
                ),
            ),
        ),
        **extra,
    )


@pytest.mark.parametrize(
    ("share", "name"),
    [
        (0.25, "web"),
        (None, "web"),
        (1e-05, "web"),  # orjson: 0.00001
        (1e-7, "web"),  # orjson: 1e-7
        (1e16, "web"),
        (float("nan"), "web"),  # json: NaN, orjson: null
        (0.1, "wéb-\u2028-\x1f-\x7f-😀"),  # UTF-8 kept, control characters escaped
        (0.1, "lone-\ud800"),  # orjson refuses it; json writes it
    ],
)
def test_the_one_pass_gives_asdict_and_canonical_json(share: float | None, name: str) -> None:
    decision = _decision(share, name)
    data, canonical = canonical_pair(decision)
    expected = dataclasses.asdict(decision)
    assert data == expected
    assert decision_to_dict(decision) == expected
    assert canonical == canonical_json(expected)


def test_a_dict_decision_and_big_integers() -> None:
    data = {"id": "d-2", "n": 2**70, "m": -(2**63), "nested": [{"z": 1, "a": (1, 2)}], "t": True}
    got, canonical = canonical_pair(data)
    assert got == data
    assert canonical == canonical_json(data)


def test_a_value_of_another_type_is_copied_as_asdict_copies_it() -> None:
    @dataclasses.dataclass
    class Odd:
        items: set[int]

    odd = Odd({1})
    data = decision_to_dict(odd)  # type: ignore[arg-type]
    assert data == dataclasses.asdict(odd)
    assert data["items"] is not odd.items
    with pytest.raises(TypeError):
        canonical_pair(odd)  # type: ignore[arg-type]  # a set is no JSON, on either path
    with pytest.raises(TypeError, match="dataclass instances"):
        canonical_pair("not a decision")  # type: ignore[arg-type]
