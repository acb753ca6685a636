"""``Ledger.admitted`` on SQLite and real PostgreSQL: whether a digest was judged and admitted for
a tag in a namespace (what a pinned Pod needs to run on its owner's decision). Only an admitting
outcome in the same namespace, for that reference at that digest, counts (one that admitted
despite violations only for the workload it was about); a decision recorded under the pinned form
of the same tag and digest counts too."""

from __future__ import annotations

import pytest
from ledger_decisions import make_decision

from affidavit.errors import LedgerError
from affidavit.ledger import Ledger

TAG = "registry.example/shop/web:1.0"
D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64


def test_only_an_admitting_decision_for_that_tag_digest_and_namespace_counts(
    ledger: Ledger,
) -> None:
    assert not ledger.admitted("shop", TAG, D1)  # empty ledger
    ledger.append(make_decision(outcome="denied", image=TAG, digest=D1))
    ledger.append(make_decision(outcome="allowed", namespace="other", image=TAG, digest=D1))
    ledger.append(
        make_decision(outcome="allowed", image="registry.example/shop/web:2.0", digest=D1)
    )
    ledger.append(make_decision(outcome="allowed", image=TAG, digest=None))
    assert not ledger.admitted("shop", TAG, D1)  # denied, other namespace, other tag, no digest
    ledger.append(make_decision(outcome="allowed", image=TAG, digest=D1))
    assert ledger.admitted("shop", TAG, D1)
    assert not ledger.admitted("shop", TAG, D2)  # the tag moved to a digest nobody judged
    assert not ledger.admitted("other-ns", TAG, D1)
    assert not ledger.admitted("shop", "registry.example/shop/web", D1)  # a prefix is not a ref


@pytest.mark.parametrize("outcome", ["warned", "audited", "excepted"])
def test_an_admission_despite_violations_counts_only_for_its_workload(
    ledger: Ledger, outcome: str
) -> None:
    lenient = make_decision(outcome=outcome, image=TAG, digest=D2)
    ledger.append(lenient)
    assert not ledger.admitted("shop", TAG, D2)
    assert not ledger.admitted("shop", TAG, D2, [("Deployment", "web"), ("Pod", lenient.name)])
    assert ledger.admitted("shop", TAG, D2, [("ReplicaSet", "web-1"), ("Deployment", lenient.name)])


def test_a_decision_on_the_pinned_form_counts_for_its_own_digest(ledger: Ledger) -> None:
    ledger.append(make_decision(outcome="allowed", image=f"{TAG}@{D1}", digest=D1))
    assert ledger.admitted("shop", TAG, D1)
    assert not ledger.admitted("shop", TAG, D2)


def test_an_unreachable_database_is_a_ledger_error() -> None:
    down = Ledger("postgresql+psycopg://affidavit@127.0.0.1:9/none", connect_timeout=1)
    with pytest.raises(LedgerError) as e:
        down.admitted("shop", TAG, D1)
    assert e.value.message.startswith(
        "ledger database postgresql+psycopg://affidavit@127.0.0.1:9/none is unreachable: "
    )
