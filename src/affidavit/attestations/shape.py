"""Strict shape checks of parsed JSON for the two documents every verification reads.

The DSSE envelope and the in-toto statement are parsed on every verification (the admission
webhook's cold path, each ``affidavit verify``). Validating them with pydantic models cost the CLI
the models' construction and pydantic's plugin discovery at start-up, and each envelope a model
build; these checks do the same job by hand. The wording of each problem is pydantic's
(``payloadType: Input should be a valid string``), so messages users and tests know stay as they
were. Each check records a problem and returns a placeholder, so one pass reports them all.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any


class Shape:
    """The problems found in one document, each ``LOCATION: what is wrong``."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def _add(self, loc: str, message: str) -> None:
        self.problems.append(f"{loc or '(root)'}: {message}")

    def string(
        self,
        document: dict[str, Any],
        key: str,
        loc: str,
        *,
        default: str | None = None,
        min_length: int = 0,
    ) -> str:
        """``document[key]`` as a string (``default`` when absent, if given)."""
        if key not in document:
            if default is None:
                self._add(loc, "Field required")
            return default or ""
        value = document[key]
        if not isinstance(value, str):
            self._add(loc, "Input should be a valid string")
            return ""
        if len(value) < min_length:
            self._add(loc, f"String should have at least {min_length} character")
        return value

    def array(
        self, document: dict[str, Any], key: str, loc: str, *, min_length: int = 0
    ) -> list[Any]:
        """``document[key]`` as a list."""
        if key not in document:
            self._add(loc, "Field required")
            return []
        value = document[key]
        if not isinstance(value, list):
            self._add(loc, "Input should be a valid list")
            return []
        if len(value) < min_length:
            self._add(
                loc,
                f"List should have at least {min_length} item after validation, not {len(value)}",
            )
        return value

    def mapping(self, document: dict[str, Any], key: str, loc: str) -> dict[str, Any]:
        """``document[key]`` as a JSON object."""
        if key not in document:
            self._add(loc, "Field required")
            return {}
        value = document[key]
        if not isinstance(value, dict):
            self._add(loc, "Input should be a valid dictionary")
            return {}
        return value

    def strings(self, document: dict[str, Any], key: str, loc: str) -> dict[str, str]:
        """``document[key]`` as a JSON object of strings."""
        value = self.mapping(document, key, loc)
        for name, item in value.items():
            if not isinstance(item, str):
                self._add(f"{loc}.{name}", "Input should be a valid string")
        return value

    def item(self, value: object, loc: str, model: str) -> dict[str, Any] | None:
        """A list item that must be an object (pydantic's message names the ``model``); None
        when it is not, and then nothing inside it is checked."""
        if not isinstance(value, dict):
            self._add(loc, f"Input should be a valid dictionary or instance of {model}")
            return None
        return value

    def no_extra(self, document: dict[str, Any], known: Collection[str], prefix: str = "") -> None:
        """Each key of ``document`` outside ``known`` is a problem."""
        for key in document:
            if key not in known:
                self._add(f"{prefix}{key}", "Extra inputs are not permitted")
