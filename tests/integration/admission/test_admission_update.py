"""UPDATEs that change no image are not new decisions: a real `affidavit webhook serve` process
admits them without judging and without a ledger row (even when the images would be refused
today), while an UPDATE that changes the set of images — a new image, an added image, an
ephemeral container — is judged like a CREATE, and an old object that cannot be read counts as
a change. A Pod's UPDATE is judged on the images it brings in, not on those it ran already."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from admission_support import Images, WebhookProcess, review

from affidavit.ledger import Ledger
from affidavit.policy.decision import Decision, NotJudged

UNCHANGED = {"admitted": "the update brings in no image the object did not run"}


def _rows(workdir: Path) -> int:
    ledger = Ledger(f"sqlite:///{workdir / 'ledger.db'}")
    try:
        return ledger.count()
    finally:
        ledger.close()


def update(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """An UPDATE review of ``new`` (a review's object) over ``old``."""
    body = copy.deepcopy(new)
    body["request"]["operation"] = "UPDATE"
    body["request"]["oldObject"] = copy.deepcopy(old["request"]["object"])
    return body


def pod_review(
    containers: list[str], ephemeral: tuple[str, ...] = (), uid: str = "p"
) -> dict[str, Any]:
    """A Pod review with these containers and ephemeral containers."""
    body = review(*containers, uid=uid, kind="Pod", name="web-1")
    obj = body["request"]["object"]
    spec = obj["spec"]["template"]["spec"]
    obj["apiVersion"] = "v1"
    obj["spec"] = spec
    if ephemeral:
        spec["ephemeralContainers"] = [
            {"name": f"debug{i}", "image": im} for i, im in enumerate(ephemeral)
        ]
    body["request"]["resource"] = {"group": "", "version": "v1", "resource": "pods"}
    body["request"]["kind"] = {"group": "", "version": "v1", "kind": "Pod"}
    return body


def test_update_that_changes_no_image_is_admitted_without_a_decision(
    webhook: WebhookProcess, images: Images, workdir: Path
) -> None:
    old = review(images.bare, images.good, uid="u-old")
    new = review(images.good, images.bare, uid="u-scale")  # same set, other order
    new["request"]["object"]["spec"]["replicas"] = 3
    new["request"]["object"]["metadata"]["labels"] = {"team": "payments"}
    rows = _rows(workdir)
    before = webhook.metric("affidavit_already_judged_total", reason="unchanged")

    response = webhook.validate(update(old, new)).json()["response"]

    assert response == {"uid": "u-scale", "allowed": True, "auditAnnotations": UNCHANGED}
    assert _rows(workdir) == rows
    after = webhook.metric("affidavit_already_judged_total", reason="unchanged")
    assert after == before + 1


def test_update_that_changes_an_image_is_judged(
    webhook: WebhookProcess, images: Images, workdir: Path
) -> None:
    rows = _rows(workdir)
    for uid, old, new in [
        ("u-swap", [images.good], [images.bare]),
        ("u-add", [images.bare], [images.bare, images.good]),
        ("u-drop", [images.bare, images.good], [images.bare]),
    ]:
        body = update(review(*old), review(*new, uid=uid))
        response = webhook.validate(body).json()["response"]
        assert response["allowed"] is False, uid
        assert "decision" in response["auditAnnotations"], uid
    assert _rows(workdir) == rows + 3


def test_an_ephemeral_container_is_a_changed_image(
    webhook: WebhookProcess, images: Images, workdir: Path
) -> None:
    old = pod_review([images.good])
    response = webhook.validate(
        update(old, pod_review([images.good], (images.bare,), uid="u-debug"))
    ).json()["response"]
    assert response["allowed"] is False
    assert "decision" in response["auditAnnotations"]
    # A debug container running an image the Pod already runs adds no image.
    response = webhook.validate(
        update(old, pod_review([images.good], (images.good,), uid="u-same"))
    ).json()["response"]
    assert response == {"uid": "u-same", "allowed": True, "auditAnnotations": UNCHANGED}


def test_a_pods_update_is_judged_on_the_images_it_brings_in(
    webhook: WebhookProcess, images: Images, workdir: Path
) -> None:
    """Only one container's image of a Pod can change, or an ephemeral container be added;
    nothing else restarts. So a Pod admitted before a policy tightened (here: one running an
    image that would be refused today) can still be debugged with an image that passes, the
    decision names only the image judged, and an image brought in that fails is refused."""

    def judged(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        answer: dict[str, Any] = webhook.validate(update(old, new)).json()["response"]
        return answer

    def recorded(answer: dict[str, Any]) -> Decision:
        ledger = Ledger(f"sqlite:///{workdir / 'ledger.db'}")
        try:
            record = ledger.get(answer["auditAnnotations"]["decision"])
        finally:
            ledger.close()
        assert record is not None
        return Decision.from_dict(record.decision)

    def recorded_images(answer: dict[str, Any]) -> list[str]:
        return [i.ref for i in recorded(answer).images]

    # what the pinning webhook makes of the tag an update brings in (/validate sees it pinned)
    good = f"{images.good}@{images.good_digest}"
    ran = pod_review([images.bare])
    scope = f"{images.bare} ran in the Pod already; judged here: {good}"
    debugged = judged(ran, pod_review([images.bare], (good,), uid="u-debug-good"))
    assert (debugged["allowed"], debugged["auditAnnotations"]["scope"]) == (True, scope)
    assert recorded_images(debugged) == [good]
    snapshot = recorded(debugged).snapshot  # the hashed record says what it did not judge
    assert snapshot is not None
    assert snapshot.not_judged == (NotJudged(images.bare, "ran in the Pod before this update"),)
    # A second container's image swapped to one that passes: the first keeps running.
    two = pod_review([images.bare, images.bare])
    two["request"]["object"]["spec"]["containers"][1]["name"] = "c1"
    swapped = pod_review([images.bare, good], uid="u-swap-one")
    swapped["request"]["object"]["spec"]["containers"][1]["name"] = "c1"
    answer = judged(two, swapped)
    assert (answer["allowed"], answer["auditAnnotations"]["scope"]) == (True, scope)
    # Swapping its only image is judged whole, as before.
    whole = judged(ran, pod_review([good], uid="u-swap-all"))
    assert whole["allowed"] is True and "scope" not in whole["auditAnnotations"]
    assert recorded_images(whole) == [good]
    assert recorded(whole).snapshot is not None
    assert recorded(whole).snapshot.not_judged == ()  # type: ignore[union-attr]
    # An image brought in that fails is refused, and the denial says what was not judged.
    bad = judged(pod_review([images.good]), pod_review([images.good], (images.bare,), uid="u-b"))
    assert bad["allowed"] is False
    assert bad["status"]["message"].endswith(
        f"{images.good} ran in the Pod already; judged here: {images.bare}"
    )
    assert recorded_images(bad) == [images.bare]


def test_an_unreadable_old_object_counts_as_a_change(
    webhook: WebhookProcess, images: Images
) -> None:
    body = update(review(images.bare), review(images.bare, uid="u-broken-old"))
    del body["request"]["oldObject"]["spec"]
    response = webhook.validate(body).json()["response"]
    assert response["allowed"] is False
    body = update(review(images.bare), review(images.bare, uid="u-no-old"))
    del body["request"]["oldObject"]
    assert webhook.validate(body).json()["response"]["allowed"] is False
