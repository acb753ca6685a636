"""Which refusals of an Event or a PolicyReport the reporter retries (the cursor waits) and which
it skips (logged, counted; the ledger keeps the decision). A refusal that will not change must
not hold back every later decision; one the installation can fix (credentials, RBAC) must not
lose them."""

from __future__ import annotations

import pytest
from kubernetes.client.exceptions import ApiException

from affidavit.errors import ClusterError
from affidavit.operator.events import _transient


def _refused(status: int, body: str = "") -> ClusterError:
    cause = ApiException(status=status, reason="x")
    cause.body = body
    error = ClusterError(f"Kubernetes API call failed: {status}")
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(
    ("status", "body", "retried"),
    [
        (500, "", True),
        (503, "", True),
        (429, "", True),
        (401, "", True),  # the operator's token refused: fix it, every Event is still owed
        (403, 'events is forbidden: User "system:serviceaccount:x:y" cannot create', True),
        (
            403,
            "unable to create new content in namespace shop because it is being terminated",
            False,
        ),
        (404, 'namespaces "gone" not found', False),
        (422, "metadata.name: Invalid value", False),
    ],
)
def test_what_is_retried_and_what_is_skipped(status: int, body: str, retried: bool) -> None:
    assert _transient(_refused(status, body)) is retried


def test_an_unreachable_api_server_is_retried() -> None:
    error = ClusterError("Kubernetes API unreachable: connection refused")
    error.__cause__ = ConnectionRefusedError()
    assert _transient(error) is True
