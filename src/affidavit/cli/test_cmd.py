"""CLI: ``affidavit test DIR`` — a policy repository's cases, judged by the webhook's engine.

Why: a policy change that refuses every release is found in the policy repository's pipeline,
not in production. Each case is a directory holding ``case.yaml``, a workload manifest and the
evidence files (in-toto Statements, or bare predicates for a one-image workload); the case names
the outcome (and optionally the exact admission message and the violated rules) it expects.
Cases are judged with :mod:`affidavit.admission.offline`, the webhook's own evaluation.

``case.yaml``::

    manifest: deployment.yaml          # default: the case's only *.yaml besides case.yaml
    evidence: evidence/                # default: evidence/ (may be absent: no attestations)
    policies: [../../policies]         # files or directories, added to --policy
    cluster: prod-eu-1
    region: eu-west-1
    namespaceLabels: {team: payments}  # besides kubernetes.io/metadata.name
    unmatchedImages: Warn
    at: 2026-06-01T00:00:00Z           # judge as of this time (default: now)
    expect:
      outcome: denied                  # allowed | denied | warned | audited | excepted
      rules: [review.tier.independentApprovals]
      message: |                       # the admission message, exactly
        Affidavit denied ...

Exit codes: 0 every case passed, 1 a case failed, 2 a case or a policy is invalid.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

OUTCOMES = ("allowed", "denied", "warned", "audited", "excepted")
CASE_FILE = "case.yaml"


@dataclass(frozen=True)
class Result:
    name: str
    passed: bool
    outcome: str
    problems: tuple[str, ...]
    #: What the policies allow that their authors may not mean (a keyless pattern a stranger's
    #: workflow also matches): said once after the summary, the exit code unchanged.
    warnings: tuple[str, ...] = ()


def _yaml_docs(path: Path) -> list[Any]:
    import yaml

    from affidavit.errors import InputError

    try:
        return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror or e}") from e
    except UnicodeDecodeError as e:
        raise InputError(f"{path} is not UTF-8 text (byte {e.start})") from e
    except yaml.YAMLError as e:
        raise InputError(f"{path} is not valid YAML: {e}") from e


def _policy_files(paths: list[Path]) -> list[Path]:
    from affidavit.errors import UsageError

    files: dict[Path, Path] = {}  # by resolved path: --policy and case.yaml may name the same
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml"))
        elif path.is_file():
            found = [path]
        else:
            raise UsageError(f"policy path {path} does not exist")
        for file in found:
            files.setdefault(file.resolve(), file)
    return list(files.values())


def _index(paths: list[Path]) -> Any:
    from affidavit.cli.explain_files import load_objects
    from affidavit.errors import PolicyError, UsageError
    from affidavit.policy import PolicyIndex
    from affidavit.policy.model import KIND_EXCEPTION, KIND_POLICY, KIND_REGION

    files = _policy_files(paths)
    if not files:
        raise UsageError("no policy files: give --policy FILE|DIR or list policies: in case.yaml")
    objs = load_objects(files)
    index = PolicyIndex.from_objects(objs[KIND_POLICY], objs[KIND_REGION], objs[KIND_EXCEPTION])
    if index.errors:
        raise PolicyError(
            "invalid policy objects: " + "; ".join(f"{k}: {v}" for k, v in index.errors.items()),
            hint="fix the named fields; the cluster rejects or ignores these objects too",
        )
    return index


def _evidence(directory: Path, images: tuple[str, ...], signer: str) -> dict[str, Any]:
    """Each image's evidence from the files (Statements by subject; a bare predicate belongs to
    the only image), assumed: their signatures are never checked here. An image with no file
    has no attestations, as in an empty registry."""

    from affidavit.attestations.evidence import AssumedAttestation, ImageEvidence
    from affidavit.attestations.reference import ImageReference
    from affidavit.cli.explain_files import predicate_type, read_evidence_file
    from affidavit.errors import InputError

    found: dict[str, list[Any]] = {i: [] for i in images}
    digests: dict[str, str] = {}
    files = sorted(directory.glob("*.json")) if directory.is_dir() else []
    for path in files:
        data, certified = read_evidence_file(path)
        if not isinstance(data, dict):
            raise InputError(f"evidence file {path} holds a JSON {type(data).__name__}")
        if "predicateType" in data:
            ptype: str | None = str(data["predicateType"])
            subject = (data.get("subject") or [{}])[0]
            digest = f"sha256:{(subject.get('digest') or {}).get('sha256', '')}"
            name = ImageReference.parse(str(subject.get("name") or "")).name
            targets = [i for i in images if ImageReference.parse(i).name == name]
            predicate = data.get("predicate") or {}
        else:
            ptype, predicate, targets = predicate_type(data), data, list(images)
            if len(targets) != 1:
                raise InputError(
                    f"evidence file {path} is a bare predicate, but the workload runs "
                    f"{len(targets)} images",
                    hint="use in-toto Statements, whose subject names the image",
                )
            digest = ImageReference.parse(targets[0]).digest or ""
        if ptype is None:
            raise InputError(
                f"evidence file {path}: not an ai-provenance/v1, code-review/v1 or SLSA "
                "provenance predicate, nor an in-toto Statement"
            )
        for image in targets:
            ref = ImageReference.parse(image)
            if ref.digest and digest and ref.digest != digest:
                continue  # a Statement about another digest of this repository
            digests.setdefault(image, digest or ref.digest or "")
            found[image].append(
                AssumedAttestation(
                    predicate_type=ptype,
                    subject_name=ref.name,
                    subject_digest=digests[image],
                    predicate=predicate,
                    envelope_digest=f"file:{path.name}",
                    signer=signer,
                    storage="local",
                    certified_source=certified,
                )
            )
    return {
        image: ImageEvidence(
            image,
            digests.get(image) or ImageReference.parse(image).digest or "",
            assumed=tuple(attestations),
        )
        for image, attestations in found.items()
    }


def run_case(case_dir: Path, policies: list[Path]) -> Result:
    """Judge one case; an invalid case raises (the caller counts it and goes on)."""
    from datetime import UTC, datetime

    from affidavit.admission.offline import judge, read_workload
    from affidavit.errors import InputError

    docs = _yaml_docs(case_dir / CASE_FILE)
    spec = docs[0] if docs and isinstance(docs[0], dict) else None
    if spec is None:
        raise InputError(f"{case_dir / CASE_FILE} holds no case (a YAML object)")
    expect = spec.get("expect") or {}
    if expect.get("outcome") not in OUTCOMES:
        raise InputError(
            f"{case_dir / CASE_FILE}: expect.outcome {expect.get('outcome')!r} is not one of "
            + ", ".join(OUTCOMES)
        )
    manifest = _manifest(case_dir, spec.get("manifest"))
    objects = [d for d in _yaml_docs(manifest) if isinstance(d, dict)]
    if len(objects) != 1:
        raise InputError(f"{manifest}: found {len(objects)} objects; a case judges one workload")
    workload = read_workload(objects[0], where=str(manifest), namespace=spec.get("namespace"))
    index = _index([*policies, *[case_dir / p for p in spec.get("policies") or []]])
    cluster, region = str(spec.get("cluster") or ""), str(spec.get("region") or "")
    labels = {"kubernetes.io/metadata.name": workload.namespace,
              **{str(k): str(v) for k, v in (spec.get("namespaceLabels") or {}).items()}}  # fmt: skip
    signer = "local"
    for image in workload.images:
        eff = index.effective(cluster=cluster, region=region, namespace=workload.namespace,
                              namespace_labels=labels, image=image)  # fmt: skip
        if eff is not None and eff.signers:
            signer = eff.signers[0].name  # assumed from the policy's signer (never checked)
            break
    evidence = _evidence(
        case_dir / str(spec.get("evidence") or "evidence"), workload.images, signer
    )
    at = spec.get("at")
    try:
        now = (datetime.fromisoformat(str(at).replace("Z", "+00:00")) if at
               else datetime.now(UTC))  # fmt: skip
    except ValueError as e:
        raise InputError(f"{case_dir / CASE_FILE}: at {at!r} is not an RFC 3339 time") from e
    unmatched = str(spec.get("unmatchedImages") or "Warn")
    if unmatched not in ("Allow", "Warn", "Deny"):
        raise InputError(f"{case_dir / CASE_FILE}: unmatchedImages {unmatched!r} is not Allow, "
                         "Warn or Deny")  # fmt: skip
    decision, message = judge(
        workload, evidence, index, cluster=cluster, region=region, namespace_labels=labels,
        unmatched_images=unmatched,  # type: ignore[arg-type]
        now=now, decision_id=f"test-{case_dir.name}",
    )  # fmt: skip
    problems = []
    if decision.outcome != expect["outcome"]:
        problems.append(f"expected outcome {expect['outcome']}, got {decision.outcome}")
    if "rules" in expect:
        rules = sorted({v.rule for v in decision.violations})
        if sorted(set(expect["rules"] or [])) != rules:
            problems.append(f"expected rules {sorted(set(expect['rules'] or []))}, got {rules}")
    if "message" in expect and (expect["message"] or "").rstrip("\n") != (message or ""):
        problems.append(f"expected message:\n{expect['message']}\ngot:\n{message or '(none)'}")
    from affidavit.policy.signer_scope import open_signers

    warnings = tuple(
        f"AccountabilityPolicy/{p.name}: {found}"
        for p in index.policies
        if p.spec.signers is not None and (found := open_signers(p.spec.signers)) is not None
    )
    return Result(case_dir.name, not problems, decision.outcome, tuple(problems), warnings)


def _manifest(case_dir: Path, named: object) -> Path:
    from affidavit.errors import InputError

    if named:
        return case_dir / str(named)
    found = sorted(p for p in case_dir.glob("*.y*ml") if p.name != CASE_FILE)
    if len(found) != 1:
        raise InputError(
            f"{case_dir}: found {len(found)} manifests besides {CASE_FILE}",
            hint="name it with manifest: in case.yaml",
        )
    return found[0]


def run_tests(
    directory: Annotated[
        Path, typer.Argument(help="A directory of cases (each holding case.yaml), or one case.")
    ],
    policy: Annotated[
        list[Path] | None,
        typer.Option("--policy", help="Policy file or directory, for every case (repeatable)."),
    ] = None,
) -> None:
    """Judge policy test cases with the webhook's engine (for a policy repository's CI).

    Each case (a directory with case.yaml, a manifest and evidence/) is judged and compared
    with the outcome, rules and message it expects. Exit 0: all passed; 1: a case failed;
    2: a case or a policy is invalid."""
    from affidavit.errors import AffidavitError, UsageError
    from affidavit.policy.messages import plural

    if not directory.is_dir():
        raise UsageError(f"{directory} is not a directory of cases")
    cases = ([directory] if (directory / CASE_FILE).is_file()
             else sorted(p.parent for p in directory.rglob(CASE_FILE)))  # fmt: skip
    if not cases:
        raise UsageError(f"no {CASE_FILE} found under {directory}",
                         hint="each case is a directory with case.yaml, a manifest, evidence/")  # fmt: skip
    failed = invalid = 0
    warnings: dict[str, None] = {}  # each once, in the order met
    for case in cases:
        label = str(case.relative_to(directory)) if case != directory else case.name
        try:
            result = run_case(case, list(policy or []))
        except AffidavitError as e:
            invalid += 1
            typer.echo(f"ERROR {label}: {e.diagnostic}")
            continue
        warnings.update(dict.fromkeys(result.warnings))
        if result.passed:
            typer.echo(f"PASS  {label} ({result.outcome})")
        else:
            failed += 1
            typer.echo(f"FAIL  {label}")
            for problem in result.problems:
                typer.echo("      " + problem.replace("\n", "\n      "))
    passed = len(cases) - failed - invalid
    summary = f"{plural(len(cases), 'case')}: {passed} passed, {failed} failed"
    typer.echo(summary + (f", {invalid} invalid" if invalid else ""))
    for warning in warnings:
        typer.echo(f"warning: {warning}", err=True)
    if invalid:
        raise typer.Exit(2)
    if failed:
        raise typer.Exit(1)


def register(root: typer.Typer) -> None:
    """Add ``affidavit test`` to the root app."""
    root.command("test", short_help="Judge policy test cases with the webhook's engine.")(run_tests)
