"""Fixtures for the admission end-to-end tests: released images and the running cluster side.

The sample repository's two releases are built, attested and signed once per session into the
real registry: ``reviewed`` (Bo's independent approval is on the final revision) and ``late``
(an AI-assisted change to authentication code pushed after Bo approved an older revision).
Each test module gets its own ``ClusterStack`` (``running_stack``) (operator and webhook as processes, a
ValidatingWebhookConfiguration with failurePolicy Fail) in its own namespace, so that the
operator/Helm e2e tests sharing the control plane never meet it: it is torn down, configuration
and policies included, when the module ends.
"""

from __future__ import annotations

from collections.abc import Generator

import pytest
from admission_e2e_support import REPO, Releases

from affidavit.attestations.keys import generate_key_pair, load_signer
from affidavit.attestations.registry import RegistryClient
from affidavit.demo.github_records import Approval
from affidavit.demo.pipeline import release
from affidavit.demo.sample import BO, make_sample_repo
from affidavit.demo.services import LocalRegistry
from affidavit.demo.stack import ClusterStack


@pytest.fixture(scope="session")
def releases(registry: LocalRegistry, tmp_path_factory: pytest.TempPathFactory) -> Releases:
    work = tmp_path_factory.mktemp("admission-releases")
    sample = make_sample_repo(work / "payments-api")
    private_pem, public_pem = generate_key_pair("ecdsa-p256")
    key = work / "ci-release.key"
    key.write_bytes(private_pem)
    signer = load_signer(key)
    approvals = [Approval(login="bo", name=BO[0], commit=sample.reviewed)]
    with RegistryClient(insecure_hosts={registry.host}) as client:
        made = [
            release(client, registry.host, REPO, sample, head, approvals, signer, work)
            for head in (sample.reviewed, sample.pushed_after_review)
        ]
    return Releases(registry.host, public_pem.decode(), made[0], made[1])


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    rep = yield
    if rep.when == "call" and rep.failed and "stack" in getattr(item, "fixturenames", ()):
        stack = item.funcargs.get("stack")  # type: ignore[attr-defined]
        if isinstance(stack, ClusterStack):
            rep.sections.append(
                (
                    "affidavit logs",
                    "\n".join(
                        f"--- {p.name} ---\n{p.log_tail(60)}"
                        for p in (stack.operator, stack.webhook)
                        if p is not None
                    ),
                )
            )
    return rep
