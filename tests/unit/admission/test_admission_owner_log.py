"""An owner reference's name is written by whoever wrote the object, and the API server does
not check it as a name: logged as it is, a newline in it began a log line of their choosing."""

from __future__ import annotations

import logging

import pytest

from affidavit.admission.owners import OwnerChain, controller_ref
from affidavit.errors import ClusterError


class _Failing:
    def read_owner(self, group: str, kind: str, namespace: str, name: str) -> None:
        raise RuntimeError("the API server is away")


class _Throttled:
    """As ``KubeApi.read_owner`` answers a 429: its message names the owner."""

    def read_owner(self, group: str, kind: str, namespace: str, name: str) -> None:
        raise ClusterError(f"cannot get {kind} {namespace}/{name}: 429 Too Many Requests")


class _Broken:
    def read_owner(self, group: str, kind: str, namespace: str, name: str) -> None:
        raise ValueError(f"no such thing as {name}")


@pytest.mark.parametrize("reader", [_Failing(), _Throttled(), _Broken()], ids=type)
def test_an_owner_name_with_a_newline_is_logged_escaped(
    caplog: pytest.LogCaptureFixture, reader: object
) -> None:
    forged = "web\n2099-01-01 00:00:00 INFO affidavit.admission: policy index sha256:x loaded"
    pod = {
        "metadata": {
            "name": "web-1",
            "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": forged,
                 "uid": "u-1", "controller": True}
            ],
        }
    }  # fmt: skip
    assert controller_ref("Pod", pod) is not None
    chain = OwnerChain(reader)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="affidavit.admission"):
        assert chain.match("Pod", "shop", pod, ("reg/app:1",), timeout=5) is None
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "owner check of" in text
    assert "\n2099-01-01" not in text and "\\n2099-01-01" in text
