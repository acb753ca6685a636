"""A registry whose free port is taken before it binds it starts again on another.

Tests and lanes run side by side on one machine, and every one of them asks the kernel for free
ports: a port chosen and released may be handed to someone else (or used for an outgoing
connection) before the registry binds it. The first port each registry is handed here is held
by a listener, as such a neighbour would: the registry starts on the next one, and its log says
why it needed it.
"""

from __future__ import annotations

import urllib.request
from pathlib import Path

from affidavit.demo.services import LocalRegistry, ReferrersRegistry


def _serves(url: str) -> bool:
    with urllib.request.urlopen(f"{url}/v2/", timeout=5) as r:
        return bool(r.status == 200)


def test_docker_registry_starts_on_another_port(tmp_path: Path, first_port_taken: int) -> None:
    registry = LocalRegistry(tmp_path).start()
    try:
        assert registry.host != f"127.0.0.1:{first_port_taken}"
        assert _serves(registry.url)
    finally:
        registry.stop()
    assert "address already in use" in (tmp_path / "registry.log").read_text()


def test_the_referrers_registry_starts_on_another_port(
    tmp_path: Path, first_port_taken: int, referrers_registry: ReferrersRegistry
) -> None:
    """(The session's ``referrers_registry`` fails or skips this where the binary is missing.)"""
    with ReferrersRegistry(tmp_path) as registry:
        assert registry.host != f"127.0.0.1:{first_port_taken}"
        assert _serves(registry.url)
    assert "address already in use" in (tmp_path / "registry.log").read_text()
