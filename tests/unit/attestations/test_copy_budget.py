"""The memory budget of ``affidavit copy``: blobs copied side by side hold at most its bytes
between them, and a blob larger than the budget is copied alone rather than never."""

from __future__ import annotations

import threading

from affidavit.attestations.copy import _Budget


def _hold(budget: _Budget, size: int, entered: threading.Event, leave: threading.Event) -> None:
    with budget.holding(size):
        entered.set()
        leave.wait(10)


def test_a_blob_that_does_not_fit_waits_until_the_bytes_are_given_back() -> None:
    budget = _Budget(10)
    a_in, a_out, b_in, b_out = (threading.Event() for _ in range(4))
    a = threading.Thread(target=_hold, args=(budget, 6, a_in, a_out))
    a.start()
    assert a_in.wait(5)
    b = threading.Thread(target=_hold, args=(budget, 6, b_in, b_out))
    b.start()
    assert not b_in.wait(0.2)  # 6 + 6 > 10: it waits (never enters while a holds)
    with budget.holding(4):  # 6 + 4 fits beside a
        pass
    a_out.set()
    assert b_in.wait(5)
    b_out.set()
    a.join(5)
    b.join(5)


def test_a_blob_larger_than_the_budget_goes_alone() -> None:
    budget = _Budget(10)
    with budget.holding(50):  # nothing else held: it may start
        pass
    a_in, a_out, big_in, big_out = (threading.Event() for _ in range(4))
    a = threading.Thread(target=_hold, args=(budget, 1, a_in, a_out))
    a.start()
    assert a_in.wait(5)
    big = threading.Thread(target=_hold, args=(budget, 50, big_in, big_out))
    big.start()
    assert not big_in.wait(0.2)  # not beside anything else
    a_out.set()
    assert big_in.wait(5)
    big_out.set()
    a.join(5)
    big.join(5)


def test_a_copy_holds_the_budget_whatever_its_largest_blob_may_be() -> None:
    """--max-blob-mib raises the largest blob a copy accepts (copied alone), not what blobs
    copied side by side may hold between them."""
    from affidavit.attestations.copy import DEFAULT_MAX_BLOB_BYTES, MEMORY_BUDGET, _Copier
    from affidavit.attestations.registry import ImageReference, RegistryClient

    ref = ImageReference.parse("registry.example/acme/app")
    with RegistryClient() as client:
        for largest in (1024 * 1024, DEFAULT_MAX_BLOB_BYTES, 8 * DEFAULT_MAX_BLOB_BYTES):
            copier = _Copier(client, ref, ref, largest)
            assert copier._budget._limit == MEMORY_BUDGET
