"""Which of a review's images are judged (``decide.judged_scope``), and what the answer says of
the others: a Pod's owner's images and the images a Pod ran before its UPDATE are not judged
again; a workload's UPDATE is judged whole; an old object that cannot be read means all are
judged; the note names at most a few images and is printable."""

from __future__ import annotations

from typing import Any

from affidavit.admission.decide import Scope, judged_scope
from affidavit.admission.owners import OwnerMatch, OwnerRef
from affidavit.admission.review import ParsedRequest
from affidavit.admission.workloads import extract_images
from affidavit.policy.decision import NotJudged

RS = OwnerRef("apps", "ReplicaSet", "web-5d8f", "u1")


def pod(*images: str) -> dict[str, Any]:
    return {"spec": {"containers": [{"name": f"c{i}", "image": im} for i, im in enumerate(images)]}}


def request(kind: str, new: dict[str, Any], old: dict[str, Any] | None) -> ParsedRequest:
    operation = "CREATE" if old is None else "UPDATE"
    return ParsedRequest("u", kind, "", operation, "ns", "web-1", "alice", (), new, old_object=old)


def scope(
    new: dict[str, Any], old: dict[str, Any] | None = None, owner: OwnerMatch | None = None
) -> tuple[tuple[str, ...], str | None]:
    """What is judged, and the answer's note."""
    found = judged_scope(request("Pod", new, old), extract_images("Pod", new), owner)
    return found.judged, found.note


def test_a_pod_is_judged_on_what_its_owner_and_its_past_do_not_account_for() -> None:
    assert scope(pod("a", "b")) == (("a", "b"), None)
    assert scope(pod("a", "proxy"), owner=OwnerMatch(RS, ("proxy",))) == (
        ("proxy",),
        f"a run(s) on the admission of its owner {RS}; judged here: proxy",
    )
    assert scope(pod("a", "dbg"), old=pod("a")) == (
        ("dbg",),
        "a ran in the Pod already; judged here: dbg",
    )
    both = scope(
        pod("a", "proxy", "dbg"), old=pod("a", "proxy"), owner=OwnerMatch(RS, ("proxy", "dbg"))
    )
    assert both == (
        ("dbg",),
        f"a run(s) on the admission of its owner {RS}; proxy ran in the Pod already; "
        "judged here: dbg",
    )
    # every image new: judged whole, nothing to say
    assert scope(pod("b"), old=pod("a")) == (("b",), None)


def test_a_workloads_update_and_an_unreadable_old_pod_are_judged_whole() -> None:
    deployment = {"spec": {"template": pod("a", "b")}}
    old = {"spec": {"template": pod("a")}}
    req = request("Deployment", deployment, old)
    assert judged_scope(req, extract_images("Deployment", deployment), None) == Scope(("a", "b"))
    assert scope(pod("a", "b"), old={"spec": "not a pod spec"}) == (("a", "b"), None)


def test_the_note_names_a_few_images_printably() -> None:
    many = [f"r.example/app{i}:1" for i in range(20)]
    images, note = scope(pod(*many, "dbg\x1b[2J"), old=pod(*many))
    assert images == ("dbg\x1b[2J",)
    assert note is not None
    assert note.startswith("r.example/app0:1, r.example/app1:1,")
    assert "r.example/app7:1 and 12 more ran in the Pod already" in note
    assert note.endswith("judged here: dbg\\x1b[2J")


def test_what_is_not_judged_is_listed_with_why_for_the_record() -> None:
    found = judged_scope(
        request("Pod", pod("a", "proxy", "dbg"), pod("a", "proxy")),
        extract_images("Pod", pod("a", "proxy", "dbg")),
        OwnerMatch(RS, ("proxy", "dbg")),
    )
    assert found.judged == ("dbg",)
    assert found.not_judged == (
        NotJudged("a", f"runs on the admission of its owner {RS}"),
        NotJudged("proxy", "ran in the Pod before this update"),
    )
