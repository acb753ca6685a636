"""Evidence residency: where an image's registry keeps data is where its evidence lives.

An image's attestations are stored beside it. They name the people who wrote, accepted and
reviewed each change (names, emails, logins), so the registry an image is deployed from decides
where those records are kept. The ``eu`` preset (GDPR Chapter V) and ``us-fedramp-moderate``
(NIST SP 800-53 SA-9(5)) restrict that place with ``evidence.residency``.

Where a registry stores data is a fact about the infrastructure that only the regional operator
knows, so RegionPolicies declare it (``evidence.registryLocations``). A registry nobody declares
is in no location, and a residency requirement fails closed for it: an undeclared registry
cannot be assumed to be in the EU. A registry two declarations place in different locations is
where both say, so it meets a residency only when every declaration that names it does.

A residency is met by its location and the locations below it: ``eu`` by ``eu`` and
``eu-central-1``. The rule is judged from the image's registry alone, so it holds whether or not
the registry could be reached and whatever attestations were found. The fix is a copy of the
image with its attestations into a registry that is there (``affidavit copy``): a byte-exact copy
keeps every digest, and so every attestation, valid.
"""

from __future__ import annotations

from affidavit.attestations.reference import ImageReference
from affidavit.policy.combine import EffectivePolicy, Req
from affidavit.policy.decision import Violation
from affidavit.policy.matching import registry_matches, shown_registry
from affidavit.policy.messages import pinned

RULE = "evidence.residency"
#: What makes a declared registry a glob of many (an IPv6 literal's bracket is not one).
WILDCARDS = frozenset("*?")


def within(location: str, residency: str) -> bool:
    """Whether ``location`` is ``residency`` or a location below it (``eu-central-1`` in ``eu``)."""
    return location == residency or location.startswith(residency + "-")


def declared(registry: str, eff: EffectivePolicy) -> tuple[Req[tuple[str, str]], ...]:
    """The declarations of ``eff`` that name the canonical ``registry`` host."""
    return tuple(d for d in eff.registry_locations if registry_matches(d.value[0], registry))


def stored_location(image: str, eff: EffectivePolicy) -> str | None:
    """Where the RegionPolicies place the registry of ``image`` (``registry.example in
    eu-west-1``), recorded with the evidence a decision used; None where no residency applies."""
    if not eff.residency:
        return None
    registry = ImageReference.parse(image).registry
    places = sorted({d.value[1] for d in declared(registry, eff)})
    return f"{registry} in {', '.join(places) or 'no declared location'}"


def _places(declarations: tuple[Req[tuple[str, str]], ...]) -> str:
    return ", ".join(f"{d.value[1]} ({d.origin.source})" for d in declarations)


def residency_violations(image: str, digest: str | None, eff: EffectivePolicy) -> list[Violation]:
    """One violation per residency of ``eff`` that the registry of ``image`` does not meet."""
    if not eff.residency:
        return []
    ref = ImageReference.parse(image)
    mine = declared(ref.registry, eff)
    out = []
    for want in eff.residency:
        where = want.value
        if mine and all(within(d.value[1], where) for d in mine):
            continue
        if mine:
            found = (
                f"{ref.registry} keeps the image and its attestations, and is declared in "
                f"{_places(mine)}"
            )
        else:
            found = (
                f"{ref.registry} keeps the image and its attestations, and no RegionPolicy that "
                "applies here says where it stores data"
            )
        there = [d for d in eff.registry_locations if within(d.value[1], where)]
        expected = f"the image and its attestations in a registry located in {where}"
        if there:
            expected += ": " + ", ".join(
                f"{shown_registry(d.value[0])} ({d.origin.source})" for d in there
            )
            hosts = [shown_registry(d.value[0]) for d in there if not WILDCARDS & set(d.value[0])]
            target = f"{hosts[0] if hosts else '<registry in ' + where + '>'}/{ref.repository}"
            fix = (
                f"copy the image with its attestations into a registry in {where} "
                f"(`affidavit copy {pinned(image, digest or ref.digest)} {target}`), deploy "
                "that copy, and let a policy's match.images name it"
            )
        else:
            expected += " (no RegionPolicy that applies here declares one)"
            fix = (
                "declare where this region's registries store data: add `evidence."
                f"registryLocations: [{{registry: {ref.registry}, location: {where}}}]` to the "
                f"RegionPolicy for this region if {ref.registry} stores data in {where}, or copy "
                f"the image with its attestations (`affidavit copy`) into a registry that does"
            )
        out.append(
            Violation(RULE, want.origin.source, found, expected, fix, image, want.origin.control)
        )
    return out
