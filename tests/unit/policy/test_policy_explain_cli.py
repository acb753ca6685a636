"""`affidavit explain`: the effective policy from policy files, and the replayed decision.

Runs the real CLI entry point on YAML files and predicate JSON files written by the test.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from affidavit.cli.main import main
from affidavit.policy import evaluate
from affidavit.policy.explain import explain_decision
from policy_builders import IMAGE, approval, exception, policy, provenance, region_policy, review


def write_policies(tmp_path: Path) -> Path:
    f = tmp_path / "policies.yaml"
    f.write_text(
        yaml.safe_dump_all(
            [policy(), region_policy("eu", ["eu-*"], jurisdictions=["pci-dss"]), exception("x")]
        )
    )
    return f


def write_evidence(tmp_path: Path, *approvers: str) -> Path:
    d = tmp_path / "evidence"
    d.mkdir()
    (d / "provenance.json").write_text(json.dumps(provenance()))
    (d / "review.json").write_text(json.dumps(review(*(approval(a) for a in approvers))))
    return d


def test_explain_prints_each_requirement_with_its_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = write_policies(tmp_path)
    code = main(
        ["explain", "--policy", str(f), "--region", "eu-west-1", "--namespace", "shop", IMAGE]
    )
    out = capsys.readouterr().out
    assert code == 0
    lines = [" ".join(line.split()) for line in out.splitlines()]
    assert lines[0] == "Effective policy"
    assert (
        "review.critical.securityReview (AI-involved changes): true <- preset/pci-dss via "
        "RegionPolicy/eu [PCI DSS 6.2.4]"
    ) in lines
    us = main(["explain", "--policy", str(f), "--region", "us-east-1", IMAGE])
    assert us == 0
    assert "securityReview" not in capsys.readouterr().out


def test_explain_with_evidence_replays_the_decision(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = write_policies(tmp_path)
    ev = write_evidence(tmp_path, "rita")
    args = [
        "explain",
        "--policy",
        str(f),
        "--region",
        "eu-west-1",
        "--namespace",
        "prod",
        "--evidence",
        str(ev),
        "--at",
        "2026-11-29T12:00:00Z",
        IMAGE,
    ]
    assert main(args) == 1
    out = capsys.readouterr().out
    assert "Decision explain-" in out
    assert ": denied (mode Enforce) at 2026-11-29T12:00:00Z" in out
    assert (
        "1. review.critical.securityReview (preset/pci-dss via RegionPolicy/eu [PCI DSS 6.2.4])"
        in out
    )
    assert "     found:    independent approvals by rita, none a member of `security`" in out
    assert main([*args[:-1], "--region", "us-east-1", IMAGE]) == 0
    assert "allowed (mode Enforce)" in capsys.readouterr().out


def test_explain_reports_invalid_policy_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(yaml.safe_dump(policy("p", mode="Strict")))
    assert main(["explain", "--policy", str(f), IMAGE]) == 2
    assert capsys.readouterr().err == (
        "error: invalid policy objects: AccountabilityPolicy/p: spec.mode: Input should be "
        "'Enforce', 'Warn' or 'Audit'\n"
        "  hint: fix the named fields; the cluster rejects or ignores these objects too\n"
    )
    g = tmp_path / "other.yaml"
    g.write_text("kind: ConfigMap\n")
    assert main(["explain", "--policy", str(g), IMAGE]) == 2
    assert capsys.readouterr().err == (
        f"error: policy file {g}: found kind 'ConfigMap'; expected one of "
        "AccountabilityPolicy, RegionPolicy, AccountabilityException\n"
    )


def test_explain_image_outside_policy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "p.yaml"
    f.write_text(yaml.safe_dump(policy(match={"images": ["registry.example/other/*"]})))
    assert main(["explain", "--policy", str(f), "--cluster", "prod-1", IMAGE]) == 0
    assert capsys.readouterr().out == (
        f"no AccountabilityPolicy matches {IMAGE} in cluster prod-1, region -, namespace "
        "default: it is not under policy\n"
        "unmatchedImages: Warn (cluster setting unmatchedImages=Warn): the webhook admits it "
        "with a warning\n"
        f"  {IMAGE}: image.unmatched (cluster setting unmatchedImages=Warn): found no "
        "AccountabilityPolicy matches this image; expected every image under an "
        "AccountabilityPolicy (unmatchedImages: Warn); fix: add registry.example/shop/payments "
        "(or a glob that covers it) to match.images of an AccountabilityPolicy, or run the image "
        f"under the name a policy covers; `affidavit explain {IMAGE} --policy FILE` shows what "
        "matches\n"
    )


def test_explain_names_a_preset_that_denies_unmatched_images(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "p.yaml"
    f.write_text(
        yaml.safe_dump_all(
            [
                policy(match={"images": ["127.0.0.1:5000/*"]}),
                region_policy("eu", ["eu-*"], jurisdictions=["pci-dss"]),
            ]
        )
    )
    argv = ["explain", "--policy", str(f), "--region", "eu-west-1", "LOCALHOST:5000/app"]
    assert main(argv) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[:2] == [
        "no AccountabilityPolicy matches localhost:5000/app:latest in cluster -, region "
        "eu-west-1, namespace default: it is not under policy",
        "unmatchedImages: Deny (preset/pci-dss via RegionPolicy/eu [PCI DSS 6.3.2]): the webhook "
        "refuses it",
    ]
    allow = ["explain", "--policy", str(f), "--unmatched-images", "Allow", "LOCALHOST:5000/app"]
    assert main(allow) == 0
    assert capsys.readouterr().out.splitlines()[1] == (
        "unmatchedImages: Allow (cluster setting unmatchedImages=Allow): the webhook admits it"
    )


def test_explain_judges_the_canonical_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "p.yaml"
    f.write_text(yaml.safe_dump(policy(match={"images": ["docker.io/acme/*"]})))
    digest = IMAGE.split("@")[1]
    assert main(["explain", "--policy", str(f), f"INDEX.DOCKER.IO/acme/app@{digest}"]) == 0
    out = capsys.readouterr().out
    assert "not under policy" not in out
    assert "AccountabilityPolicy/baseline" in out


def test_explain_decision_lists_exception_and_evidence() -> None:
    from policy_builders import NOW, ctx, evidence, index

    ix = index([policy()], exceptions=[exception("hotfix")])
    d = evaluate(ctx(), {IMAGE: evidence(provenance(), review())}, ix, now=NOW, decision_id="d-9")
    text = explain_decision(d)
    assert text.splitlines()[:4] == [
        "Decision d-9: excepted (mode Enforce) at 2026-11-29T12:00:00Z",
        "  request: CREATE Deployment/payments in namespace shop by release-bot",
        "  cluster: prod-1, region us-east-1",
        f"  image: {IMAGE} -> {IMAGE.split('@')[1]}",
    ]
    assert "  exception: shop/hotfix" in text
    assert "  1. review.critical.independentApprovals (AccountabilityPolicy/baseline)" in text


def test_explain_says_which_exceptions_apply_and_why_the_others_do_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "policies.yaml"
    docs = [
        policy(exceptions={"maxDays": 1}),
        exception("short", expiresAt="2026-11-29T20:00:00Z"),
        exception("long", expiresAt="2026-12-01T00:00:00Z"),
        exception("other", images=["registry.example/shop/cart*"]),
        exception("over", expiresAt="2026-11-28T00:00:00Z"),
    ]
    f.write_text(yaml.safe_dump_all(docs))
    at = ["--at", "2026-11-29T12:00:00Z", "--namespace", "shop", "--name", "payments"]
    assert main(["explain", "--policy", str(f), *at, IMAGE]) == 0
    out = capsys.readouterr().out
    assert out.split("Exceptions in namespace", 1)[1].splitlines() == [
        " shop (for Deployment/payments)",
        "  shop/long: does not apply: lasts 2 days, longer than the 1 days "
        "AccountabilityPolicy/baseline allows",
        f"  shop/other: does not apply: names images registry.example/shop/cart*, not {IMAGE}",
        "  shop/over: does not apply: expired at 2026-11-28T00:00:00Z",
        "  shop/short: applies",
    ]


def test_explain_says_what_the_images_name_alone_already_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A release manager asks before deploying: the registry's location is known without any
    evidence, so a residency it cannot meet is said at once, with the copy that fixes it."""
    f = tmp_path / "policies.yaml"
    placed = [{"registry": "registry.eu.example", "location": "eu-west-1"}]
    eu = region_policy("eu", ["eu-*"], jurisdictions=["eu"], evidence={"registryLocations": placed})
    f.write_text(yaml.safe_dump_all([policy(), eu]))
    code = main(["explain", "--policy", str(f), "--region", "eu-west-1", IMAGE])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    heading = out.index("Unmet by the image's name alone, whatever its evidence")
    assert out[heading + 1].startswith(
        f"  {IMAGE}: evidence.residency (preset/eu via RegionPolicy/eu"
    )
    assert "`affidavit copy registry.example/shop/payments@sha256:" in out[heading + 1]
    assert main(["explain", "--policy", str(f), "--region", "eu-west-1", "--json", IMAGE]) == 0
    (message,) = json.loads(capsys.readouterr().out)["unmetByName"]
    assert message == out[heading + 1][2:]
    assert main(["explain", "--policy", str(f), "--region", "us-east-1", "--json", IMAGE]) == 0
    assert json.loads(capsys.readouterr().out)["unmetByName"] == []
