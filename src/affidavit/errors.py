"""One error family for everything a user can get wrong or the world can break.

Every failure a user can cause or meet (bad input, a bad signature, an unreachable registry, a
database that went away) is an ``AffidavitError`` carrying a message that names the problem and,
where one exists, a hint that names the fix. Third-party exceptions are wrapped where they enter
(``raise SomeError(...) from e``), so the CLI can map the family to exit codes in one place and
never show a stack trace for a user mistake.
"""

from __future__ import annotations


class AffidavitError(Exception):
    """Base of every error Affidavit reports to a user."""

    #: Process exit code the CLI uses for this kind of failure.
    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    @property
    def diagnostic(self) -> str:
        """The user-facing text: the problem, then the fix when one is known."""
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message

    def __str__(self) -> str:
        return self.diagnostic


class UsageError(AffidavitError):
    """The command line or a configuration file asks for something impossible."""

    exit_code = 2


class InputError(AffidavitError):
    """An input file or document is malformed (JSON, YAML, a predicate, an AdmissionReview)."""

    exit_code = 2


class CollectError(AffidavitError):
    """Evidence could not be collected from git or code-review data."""

    exit_code = 3


class KeyMaterialError(AffidavitError):
    """A signing or verification key cannot be loaded or used."""

    exit_code = 2


class SigningError(AffidavitError):
    """An attestation could not be signed."""

    exit_code = 3


class VerificationError(AffidavitError):
    """An attestation did not verify: signature, subject, payload type, envelope shape, size."""

    exit_code = 4


class RegistryError(AffidavitError):
    """The OCI registry is unreachable, refused a request, or lacks the image."""

    exit_code = 5


class PolicyError(AffidavitError):
    """A policy object is invalid or cannot be combined."""

    exit_code = 2


class LedgerError(AffidavitError):
    """The decision ledger cannot be reached or its hash chain is broken."""

    exit_code = 6


class ClusterError(AffidavitError):
    """The Kubernetes control plane cannot be started or reached."""

    exit_code = 7
