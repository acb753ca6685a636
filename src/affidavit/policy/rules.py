"""The rules: what one image's verified evidence must show under an effective policy.

Each check yields Violations that name the rule, the policy (and control) behind it, what was
found, what was expected and the command that fixes it. The evidence is taken only from
attestations that verified against a signer the effective policy trusts and whose subject is the
image being deployed; everything else is reported, never used.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase

from pydantic import ValidationError

from affidavit.attestations.evidence import Attestation, ImageEvidence, newest
from affidavit.attestations.predicates import (
    AI_PROVENANCE_V1,
    CODE_REVIEW_V1,
    SLSA_PROVENANCE_V1,
    AiProvenance,
    CodeReview,
)
from affidavit.attestations.reference import ImageReference
from affidavit.policy.certified import certified_source_violation
from affidavit.policy.combine import EffectivePolicy, Origin, Req
from affidavit.policy.decision import EvidenceUsed, Violation
from affidavit.policy.lifetime import parse_time
from affidavit.policy.messages import (
    a,
    collect_provenance_fix,
    collect_review_fix,
    pinned,
    short_type,
    signing,
    unverified,
)
from affidavit.policy.pseudonymous import pseudonym_violations
from affidavit.policy.release import check_release_approver
from affidavit.policy.residency import residency_violations, stored_location
from affidavit.policy.sources import repository_glob_key, repository_key
from affidavit.policy.stored import ExceptionRef
from affidavit.policy.tiers import check_review, check_tools, touched_tiers


def _v(
    rule: str, origin: Origin, found: str, expected: str, fix: str, image: str | None
) -> Violation:
    return Violation(rule, origin.source, found, expected, fix, image, origin.control)


def _primary(eff: EffectivePolicy) -> Origin:
    return Origin(eff.sources[0] if eff.sources else "default")


def _origin(req: Req[bool] | None, eff: EffectivePolicy) -> Origin:
    return req.origin if req is not None else _primary(eff)


def _parse_error(e: ValidationError) -> str:
    first = e.errors()[0]
    return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"


def _provenance(att: Attestation | None) -> AiProvenance | str | None:
    if att is None:
        return None
    try:
        return att.parsed(AiProvenance)
    except ValidationError as e:
        return _parse_error(e)


def _review(att: Attestation | None) -> CodeReview | str | None:
    if att is None:
        return None
    try:
        return att.parsed(CodeReview)
    except ValidationError as e:
        return _parse_error(e)


def _slsa_revisions(att: Attestation | None) -> set[str]:
    """The git revisions a SLSA v1 provenance names (``resolvedDependencies[].digest``).

    The predicate is any builder's signed JSON, read without a model: a field of another shape
    than SLSA v1's names no revision (the other attestations must still agree)."""
    if att is None:
        return set()
    definition = att.predicate.get("buildDefinition")
    deps = definition.get("resolvedDependencies") if isinstance(definition, dict) else None
    out = set()
    for dep in deps if isinstance(deps, list) else []:
        digest = dep.get("digest") if isinstance(dep, dict) else None
        if not isinstance(digest, dict):
            continue
        for algo in ("gitCommit", "sha1"):
            value = digest.get(algo)
            if isinstance(value, str):
                out.add(value)
    return out


def _missing(
    rule: str, ptype: str, ev: ImageEvidence, origin: Origin, why: str, fix: str
) -> Violation:
    found = unverified(ptype, ev)
    return _v(rule, origin, found, f"{a(short_type(ptype))} attestation {why}", fix, ev.image)


def unpinned_violation(image: str, digest: str, eff: EffectivePolicy) -> Violation:
    """A Pod's tag that passed on its evidence but was not pinned to the digest judged.

    The mutating webhook pins every covered tag a Pod brings in, as far as its lookup goes in
    time; where it could not, the tag as written would run whatever it names at each pull (a
    retag, then a restart or a gated Pod released, runs a digest nobody judged). Refused, to be
    retried: a controller retries by itself, and the lookup's answer is cached by then."""
    return _v(
        "image.pinned",
        eff.mode_req.origin,
        f"tag reference {image} as written, not pinned to the digest judged ({digest})",
        "the tag pinned to the digest judged, by Affidavit's mutating webhook, so that what "
        "runs is what was judged",
        "retry (the mutating webhook pins the tag once it resolves in time); if every retry is "
        "refused, check that Affidavit's MutatingWebhookConfiguration is installed and reaches "
        f"the webhook, or deploy `{image}@{digest}`",
        image,
    )


def check_image(
    image: str,
    ev: ImageEvidence | None,
    eff: EffectivePolicy,
    now: datetime,
    missing: tuple[str, str, str] | None = None,
) -> tuple[list[Violation], list[EvidenceUsed]]:
    """``ev`` None: no evidence. ``missing`` (rule, found, fix) says the request itself caused
    that (never fail-open); without it the registry was unavailable (``failurePolicy`` decides).
    """
    out: list[Violation] = []
    repo_at = pinned(image, ev.digest if ev is not None else None)
    sign = signing(eff.signers)
    if eff.require_digest and "@sha256:" not in image:
        assert eff.require_digest_req is not None
        out.append(
            _v(
                "image.digest",
                eff.require_digest_req.origin,
                f"tag reference {image}",
                "an image reference pinned by digest (REPOSITORY@sha256:...)",
                f"deploy `{pinned(image, None)}` with the digest your build pushed",
                image,
            )
        )
    out += residency_violations(image, ev.digest if ev is not None else None, eff)
    if ev is None:
        if missing is not None:
            rule, found, fix = missing
            expected = (
                "verified attestations for the image (missing evidence, not a registry "
                "outage: failurePolicy does not apply)"
            )
            out.append(_v(rule, _primary(eff), found, expected, fix, image))
        elif not eff.fail_open:
            out.append(
                _v(
                    "evidence.unavailable",
                    eff.failure_policy.origin
                    if eff.failure_policy.origin.source != "default"
                    else _primary(eff),
                    "no evidence: the image's registry could not be reached",
                    "verified attestations for the image (failurePolicy: Fail)",
                    "make the registry reachable from the webhook and retry, or set "
                    "`spec.require.failurePolicy: Ignore` to fail open",
                    image,
                )
            )
        return out, []

    deployed = ImageReference.parse(image).digest
    if deployed is not None and deployed != ev.digest:
        out.append(
            _v(
                "subject.digest",
                _primary(eff),
                f"evidence for {ev.digest}",
                f"evidence for {deployed} (the digest being deployed)",
                "re-run verification for the deployed digest",
                image,
            )
        )
    trusted = {s.name for s in eff.signers}
    usable: list[Attestation] = []
    for att in ev.statements:
        if att.signer not in trusted:
            continue
        if att.subject_digest != ev.digest:
            out.append(
                _v(
                    "subject.digest",
                    _origin(eff.provenance, eff),
                    f"{a(short_type(att.predicate_type))} attestation whose subject is "
                    f"{att.subject_digest}",
                    f"subject {ev.digest} (the image being deployed)",
                    "attest the image that is deployed: `"
                    + f"affidavit attest {repo_at} --predicate <file> "
                    + f"--type {att.predicate_type} {sign}`",
                    image,
                )
            )
            continue
        if eff.certified_source is not None:
            mismatch = certified_source_violation(att, eff.certified_source, image)
            if mismatch is not None:  # the platform's word beats the pipeline's: not used
                out.append(mismatch)
                continue
        usable.append(att)
    counted = [
        n for t in dict.fromkeys(a.predicate_type for a in usable) if (n := newest(usable, t))
    ]
    location = stored_location(image, eff)
    used = [
        EvidenceUsed(
            image,
            a.predicate_type,
            a.envelope_digest,
            a.signer,
            certified_repository=c.repository if (c := a.certified_source) else None,
            certified_revision=(c.revision or None) if c else None,
            location=location,
        )
        for a in counted
    ]

    def first(ptype: str) -> Attestation | None:
        return newest(usable, ptype)  # the newest by its signed time, never the registry's order

    prov_att, review_att = first(AI_PROVENANCE_V1), first(CODE_REVIEW_V1)
    prov = _provenance(prov_att)
    review = _review(review_att)
    signer_names = ", ".join(sorted(trusted)) or "no signer (the matching policies trust none)"
    if eff.provenance is not None and eff.provenance.value:
        if prov is None:
            out.append(
                _missing(
                    "provenance.present",
                    AI_PROVENANCE_V1,
                    ev,
                    eff.provenance.origin,
                    f"signed by {signer_names} with subject {ev.digest}",
                    collect_provenance_fix(repo_at, sign, pseudonyms=eff.pseudonyms),
                )
            )
        elif isinstance(prov, str):
            out.append(
                _v(
                    "provenance.valid",
                    eff.provenance.origin,
                    f"an ai-provenance/v1 predicate that does not parse ({prov})",
                    "a predicate valid against the ai-provenance/v1 schema",
                    collect_provenance_fix(repo_at, sign, pseudonyms=eff.pseudonyms),
                    image,
                )
            )
    if isinstance(prov, AiProvenance):
        out += _tier_map(prov, eff.tier_map_digests, image, repo_at, sign, eff.pseudonyms)
    if isinstance(prov, AiProvenance) and eff.provenance_max_age_days is not None:
        out += _freshness(
            prov, eff.provenance_max_age_days, image, repo_at, sign, now, eff.pseudonyms
        )
    if eff.consistent_revision is not None:
        out += _consistency(prov, review, first(SLSA_PROVENANCE_V1), eff, image, repo_at)
    out += source_repository(prov, review, eff, image)
    if isinstance(prov, AiProvenance):
        unknown_ai = eff.treat_unknown_as_ai is not None
        tiers = touched_tiers(prov, unknown_ai)
        reviewed = check_review(tiers, review, eff, image, repo_at, ev)
        out += reviewed
        reported = any(v.rule in ("review.present", "review.valid") for v in reviewed)
        out += check_release_approver(tiers, review, eff, image, repo_at, ev, reported)
        out += check_tools(prov, unknown_ai, eff, image)
    if eff.pseudonyms:
        out += pseudonym_violations(prov, review, eff, image, repo_at, sign)
    return out, used


def _tier_map_source(prov: AiProvenance) -> str:
    src = prov.collector.tiers_source
    if src is None:
        return "source not recorded"
    if src.kind == "base-revision":
        return f"{src.path} at base revision {(src.revision or '?')[:12]}"
    if src.kind == "file":
        return f"--tiers {src.path}"
    return "the built-in default map"


def _tier_map(
    prov: AiProvenance,
    pins: tuple[Req[str], ...],
    image: str,
    repo_at: str,
    sign: str,
    pseudonyms: bool,
) -> list[Violation]:
    """``require.tierMapDigest``: the files were put in tiers by the map the policy pins, so a
    pipeline cannot classify with a map of its own choosing."""
    used = prov.collector.tiers_digest
    out = []
    for pin in pins:
        if used == pin.value:
            continue
        found = (
            f"provenance classified with tier map {used} ({_tier_map_source(prov)})"
            if used
            else "provenance that does not record its tier map (no collector.tiersDigest)"
        )
        fix = (
            "classify with the pinned map (commit it as .affidavit/tiers.yaml on the base "
            "revision, or pass it with --tiers), then "
            + collect_provenance_fix(repo_at, sign, pseudonyms=pseudonyms)
            + f"; if the map changed on purpose, update `require.tierMapDigest` in {pin.origin.source}"
        )
        expected = f"files classified with the pinned tier map {pin.value}"
        out.append(_v("provenance.tierMap", pin.origin, found, expected, fix, image))
    return out


#: How far a commit time may lie after the attestation was made (or now) and still be taken as
#: a time: the committer's clock and the pipeline's differ by a little.
COMMIT_CLOCK_SKEW = timedelta(minutes=5)


def _freshness(
    prov: AiProvenance,
    req: Req[int],
    image: str,
    repo_at: str,
    sign: str,
    now: datetime,
    pseudonyms: bool,
) -> list[Violation]:
    rev = prov.source.revision
    change = next((c for c in prov.changes if c.commit == rev), None)
    times = [change.committed_at] if change else [c.committed_at for c in prov.changes]
    # a time without a zone is no instant to compare with now: no commit time, as unreadable
    parsed = [p for p in map(parse_time, times) if p is not None]
    fix = "rebuild from a recent revision, then " + collect_provenance_fix(
        repo_at, sign, pseudonyms=pseudonyms
    )
    expected = f"a revision committed at most {req.value} days ago"
    if not parsed:
        found = f"no commit time for revision {rev[:12]}"
        return [_v("provenance.fresh", req.origin, found, expected, fix, image)]
    committed = max(parsed)
    # A commit time is what the committer's clock (or GIT_COMMITTER_DATE) said: one after the
    # attestation was made, or after now, shows nothing about freshness (it would pass forever).
    made = parse_time(prov.created_at) if prov.created_at else None
    bound, bound_name = (made, "the attestation was made") if made and made < now else (now, "now")
    if committed > bound + COMMIT_CLOCK_SKEW:
        found = (
            f"revision {rev[:12]} committed at {committed.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ},"
            f" after {bound_name} ({bound.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}): a commit time"
            " set ahead shows no age"
        )
        fix = (
            "commit with the real time (no GIT_COMMITTER_DATE, a synchronised clock), rebuild,"
            " then " + collect_provenance_fix(repo_at, sign, pseudonyms=pseudonyms)
        )
        return [_v("provenance.fresh", req.origin, found, expected, fix, image)]
    age = now - committed
    if age <= timedelta(days=req.value):
        return []
    # "30 days ago" would read as meeting "at most 30 days": the hours past the limit are named
    hours = f" {age.seconds // 3600} hours" if age.days == req.value else ""
    found = f"revision {rev[:12]} committed {age.days} days{hours} ago"
    return [_v("provenance.fresh", req.origin, found, expected, fix, image)]


def source_repository(
    prov: object, review: object, eff: EffectivePolicy, image: str
) -> list[Violation]:
    """The provenance and the review must name a repository each policy's
    ``sourceRepositories`` allows. A signature says who signed, not for which repository: a
    reusable signing workflow any repository may call signs honest attestations of another
    repository's build, which would otherwise stand for this image (pushed to its path by
    anyone who may push there). The repository a statement names is the platform's word only
    where ``certifiedSource`` holds it to its certificate (keyless); under a key many
    repositories share, it is the pipeline's."""
    out: list[Violation] = []
    named = [
        (kind, predicate.source.repository)
        for kind, predicate in (("ai-provenance", prov), ("code-review", review))
        if isinstance(predicate, AiProvenance | CodeReview)
    ]
    for req in eff.source_repositories:
        globs = [repository_glob_key(g).lower().split("/") for g in req.value]
        for kind, repository in named:
            # path segment by segment: `*` never spans a `/` (`*/acme/app` must not match
            # gitlab.com/mallory/acme/app)
            parts = repository_key(repository).lower().split("/")
            if any(len(g) == len(parts) and all(map(fnmatchcase, parts, g)) for g in globs):
                continue
            out.append(
                _v(
                    "source.repository",
                    req.origin,
                    f"{kind} of a build from {repository}",
                    "a build from one of: " + ", ".join(req.value),
                    "build and attest the image in one of those repositories; if this one is"
                    f" meant to deploy here, have {req.origin.source} add it to"
                    " `spec.require.sourceRepositories`",
                    image,
                )
            )
    return out


def _consistency(
    prov: object,
    review: object,
    slsa: Attestation | None,
    eff: EffectivePolicy,
    image: str,
    repo_at: str,
) -> list[Violation]:
    assert eff.consistent_revision is not None
    out = []
    seen: dict[str, str] = {}
    if isinstance(prov, AiProvenance):
        seen["ai-provenance"] = prov.source.revision
    if isinstance(review, CodeReview):
        seen["code-review"] = review.source.revision
    slsa_revs = _slsa_revisions(slsa)
    if slsa_revs and seen and not set(seen.values()) & slsa_revs:
        seen["slsa"] = ",".join(sorted(slsa_revs))
    if len(set(seen.values())) > 1:
        found = ", ".join(f"{k} {v[:12]}" for k, v in seen.items())
        out.append(
            _v(
                "revision.consistent",
                eff.consistent_revision.origin,
                found,
                "one source revision across all attestations",
                "collect provenance and review for the revision the image was built from, then "
                "attest both: "
                + collect_provenance_fix(repo_at, signing(eff.signers), pseudonyms=eff.pseudonyms),
                image,
            )
        )
    if isinstance(prov, AiProvenance) and isinstance(review, CodeReview):
        built, reviewed = prov.source.repository, review.source.repository
        if repository_key(built) != repository_key(reviewed):
            # a fork shares its commits: the same revision reviewed elsewhere is no review here
            system = review.change_request.system
            out.append(
                _v(
                    "repository.consistent",
                    eff.consistent_revision.origin,
                    f"ai-provenance of {built}, code-review of {reviewed}",
                    "the review of a change request in the repository the image was built from",
                    collect_review_fix(
                        repo_at,
                        f"collect the review of the change request in {built}",
                        system,
                        prov.source.revision,
                        sign=signing(eff.signers),
                        pseudonyms=eff.pseudonyms,
                    ),
                    image,
                )
            )
    return out


def check_workload(
    kind: str, name: str, namespace: str, labels: Mapping[str, str], eff: EffectivePolicy
) -> list[Violation]:
    out = []
    for rule, reqs, what in (
        ("labels.owner", eff.owner_labels, "the owning team"),
        ("labels.escalation", eff.escalation_labels, "the escalation contact"),
    ):
        for req in reqs:
            if labels.get(req.value):
                continue
            out.append(
                _v(
                    rule,
                    req.origin,
                    f"no label `{req.value}` on {kind}/{name}",
                    f"label `{req.value}` naming {what}",
                    f"set `metadata.labels.{req.value}` in the manifest "
                    f"(`kubectl label {kind.lower()} {name} -n {namespace} {req.value}=<value>`)",
                    None,
                )
            )
    return out


def scope_violation(
    image: str, broad: Sequence[tuple[ExceptionRef, tuple[str, ...]]], req: Req[bool]
) -> Violation:
    """``exceptions.repositoryOnly``: every exception that would have admitted ``image`` names
    images beyond one repository (each given with the globs that do)."""
    names = "; ".join(f"{e.key} names {', '.join(globs)}" for e, globs in broad)
    return _v(
        "exceptions.repositoryOnly",
        req.origin,
        f"the exceptions covering it cover more than one repository: {names}",
        "an exception whose image globs each name one repository (a wildcard only in the tag "
        "or digest)",
        "narrow the exception's spec.images to the repository it is for (e.g. "
        f"{_repository_of(image)} or {_repository_of(image)}:*), then deploy again",
        image,
    )


def _repository_of(image: str) -> str:
    ref = ImageReference.parse(image)
    return f"{ref.registry}/{ref.repository}"


def separation_violation(
    image: str,
    own: Sequence[ExceptionRef],
    user: str,
    req: Req[bool],
    acting: Mapping[str, str] | None = None,
) -> Violation:
    """``exceptions.separateRequester``: every exception that would have admitted ``image`` was
    requested by the deployer ``user`` themself, by someone who counts as ``user`` (``acting``:
    requester -> why, as ``admission.acting`` says it), or by nobody on record (not stamped)."""

    def by(e: ExceptionRef) -> str:
        if e.requested_by is None:
            return "nobody on record: not stamped"
        if e.requested_by == user or acting is None or e.requested_by not in acting:
            return e.requested_by
        return f"{e.requested_by}, {acting[e.requested_by]}"

    names = ", ".join(f"{e.key} (requested by {by(e)})" for e in own)
    return _v(
        "exceptions.separateRequester",
        req.origin,
        f"the exceptions covering it cannot admit what {user} deploys: {names}",
        "an exception requested by someone other than the deployer (separation of duties)",
        "have a second person with the right to write AccountabilityExceptions apply or edit "
        "the exception (the webhook records who did), then deploy again",
        image,
    )
