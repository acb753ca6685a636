"""The webhook's ledger settings: the lock wait stays well inside the request budget (so a held
lock buffers the decision instead of outliving the apiserver's timeout), and buffered decisions
get a file by default beside a SQLite ledger."""

from __future__ import annotations

from pathlib import Path

import pytest

from affidavit.admission.server import WebhookSettings
from affidavit.errors import UsageError


def _settings(tmp_path: Path, **kw: object) -> WebhookSettings:
    return WebhookSettings(
        tls_cert=tmp_path / "tls.crt",
        tls_key=tmp_path / "tls.key",
        cluster_name="c",
        region="r",
        policy_dir=tmp_path,
        **kw,  # type: ignore[arg-type]
    )


def test_the_ledger_waits_at_most_a_second_or_an_eighth_of_the_budget(tmp_path: Path) -> None:
    assert _settings(tmp_path).ledger_wait == 1.0
    assert _settings(tmp_path, budget_seconds=4).ledger_wait == 0.5
    assert _settings(tmp_path, ledger_wait_seconds=0.25).ledger_wait == 0.25
    with pytest.raises(UsageError) as e:
        _settings(tmp_path, ledger_wait_seconds=8)
    assert e.value.message == "--ledger-wait 8 is outside (0, --budget-seconds 8)"


def test_the_buffer_file_defaults_beside_a_sqlite_ledger(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    assert _settings(tmp_path, ledger_url=f"sqlite:///{db}").ledger_buffer_path == Path(
        f"{db}-buffer.jsonl"
    )
    pg = "postgresql+psycopg://affidavit@127.0.0.1:5432/ledger"
    assert _settings(tmp_path, ledger_url=pg).ledger_buffer_path is None
    given = tmp_path / "buffer.jsonl"
    assert _settings(tmp_path, ledger_url=pg, ledger_buffer_file=given).ledger_buffer_path == given
    assert _settings(tmp_path, ledger_url=None).ledger_buffer_path is None
