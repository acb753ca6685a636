"""Fixtures for the keyless tests: a private Sigstore on loopback for each module.

Fulcio, Rekor v2, a timestamp authority and a CT log (``affidavit.envtest.sigstore``, built by
``scripts/sigstore-binaries``) trust the session control plane's service-account issuer (type
``kubernetes``, audience ``sigstore``); see ``keyless_sigstore.started_private_sigstore``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from affidavit.envtest import ControlPlaneInfo
from affidavit.envtest.sigstore import PrivateSigstore, SigstoreInfo
from keyless_sigstore import Kubectl, started_private_sigstore


@pytest.fixture(scope="module")
def private_sigstore_instance(
    control_plane: ControlPlaneInfo, kubectl: Kubectl, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrivateSigstore]:
    with started_private_sigstore(
        control_plane, kubectl, tmp_path_factory.mktemp("private-sigstore")
    ) as sigstore:
        yield sigstore


@pytest.fixture(scope="module")
def private_sigstore(private_sigstore_instance: PrivateSigstore) -> SigstoreInfo:
    return private_sigstore_instance.info
