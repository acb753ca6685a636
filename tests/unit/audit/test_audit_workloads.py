"""How the tally names a request's workload: a Pod or ReplicaSet with a Kubernetes-generated
suffix is its owner, anything else keeps its name. The suffix check is written for speed (one
``str.strip``); these cases pin it against the rule as Kubernetes states it: every character
from the generated-name alphabet, 5 of them for a Pod, 6 to 10 for a ReplicaSet's hash."""

from __future__ import annotations

import itertools

import pytest

from affidavit.audit.facts import freeze
from affidavit.audit.tally import workload_of

ALPHABET = set("bcdfghjklmnpqrstvwxz2456789")


def _by_the_rule(kind: str, name: str) -> str:
    def generated(tail: str, lengths: range) -> bool:
        return len(tail) in lengths and set(tail) <= ALPHABET

    if kind == "Pod":
        base, _, tail = name.rpartition("-")
        if not base or not (generated(tail, range(5, 6)) or tail.isdigit()):
            return name
        name, kind = base, "ReplicaSet"
    if kind == "ReplicaSet":
        base, _, tail = name.rpartition("-")
        if base and generated(tail, range(6, 11)):
            return base
    return name


TAILS = [
    "",
    "x2lqz",
    "x2lq",
    "x2lqzz",
    "x2lqa",  # a vowel is never generated
    "X2LQZ",
    "b-c",
    "0",
    "12",
    "7d4b9c8f6d",
    "7d4b9c8f6",
    "7d4b9c",
    "7d4b9",
    "7d4b9c8f6dd",
    "7d4b9c8f6e",
    "zzzzzzzzzzz",
    " bcdf",
    "bcdf\n",
]


@pytest.mark.parametrize("kind", ["Pod", "ReplicaSet", "Deployment", "StatefulSet"])
def test_workload_names_follow_the_generated_name_rule(kind: str) -> None:
    for rs, pod in itertools.product(TAILS, repeat=2):
        for name in (f"web-{rs}-{pod}", f"web-{pod}", f"{pod}", f"-{pod}", f"web--{pod}"):
            assert workload_of(kind, name) == _by_the_rule(kind, name), (kind, name)


def test_freeze_makes_lists_and_objects_hashable_and_keeps_the_rest() -> None:
    value = ("a", 1, None, ("b", ["c", {"d": [1, 2]}]))
    frozen = freeze(value)
    assert frozen == ("a", 1, None, ("b", ("c", (("d", (1, 2)),))))
    hash(frozen)
    already = ("a", ("b", 1.5, None))
    assert freeze(already) is already
    assert freeze(["x"]) == ("x",)
