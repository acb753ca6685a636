"""The app's answers as bytes on the wire, in-process (the ASGI app, no server): a review that
crashes the judgement is a denial for its uid (400 without one), never a 500, whether it is judged
on the event loop (warm) or on the app's own thread pool; answers are UTF-8 JSON (orjson) that read back as the text
the webhook wrote, non-ASCII included."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Any

import httpx
from admission_support import in_process_webhook

from affidavit.admission.app import create_app
from affidavit.admission.decide import UNAUTHENTICATED, Webhook
from affidavit.policy.decision import Caller


class _Crashing(Webhook):
    """A webhook with a bug: every judgement raises, on the event loop (``prepare``, warm reviews)
    and in the judging threads (``handle``) alike."""

    def handle(
        self, body: bytes, caller: Caller = UNAUTHENTICATED, started: float | None = None
    ) -> Any:
        raise RuntimeError("a bug")

    def prepare(
        self, body: bytes, started: float, caller: Caller, *, warm_only: bool = False
    ) -> Any:
        raise RuntimeError("a bug")


def _webhook(tmp_path: Path) -> Webhook:
    (tmp_path / "policies").mkdir()
    return in_process_webhook(tmp_path, tmp_path / "policies", cluster_name="test")


def _post(webhook: Webhook, body: bytes) -> httpx.Response:
    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(webhook))
        async with httpx.AsyncClient(transport=transport, base_url="https://webhook") as client:
            return await client.post("/validate", content=body)

    return asyncio.run(post())


def test_a_crashed_judgement_is_a_denial_for_its_uid_or_a_400(tmp_path: Path) -> None:
    built = _webhook(tmp_path)
    crashing = _Crashing(**{f.name: getattr(built, f.name) for f in dataclasses.fields(Webhook)})
    try:
        body = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}
        answer = _post(crashing, json.dumps({**body, "request": {"uid": "u-1"}}).encode())
        assert answer.status_code == 200
        assert answer.json() == {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": {
                "uid": "u-1",
                "allowed": False,
                "status": {
                    "code": 403,
                    "message": "internal error in the affidavit webhook (RuntimeError); denied",
                    "reason": "Forbidden",
                },
            },
        }
        no_uid = _post(crashing, json.dumps(body).encode())
        assert no_uid.status_code == 400
        assert no_uid.json() == {
            "error": "internal error in the affidavit webhook (RuntimeError); denied"
        }
    finally:
        built.close()


def test_an_answer_is_utf8_json_that_reads_back_as_written(tmp_path: Path) -> None:
    webhook = _webhook(tmp_path)
    try:
        body = {"apiVersion": "admission.k8s.io/v1", "kind": "Révision", "request": {"uid": "u-2"}}
        answer = _post(webhook, json.dumps(body, ensure_ascii=False).encode())
        assert answer.headers["content-type"] == "application/json"
        assert "Révision".encode() in answer.content  # UTF-8, not \u escapes
        assert answer.json()["response"]["status"]["message"] == (
            "malformed AdmissionReview: kind must be AdmissionReview, got 'Révision'"
        )
    finally:
        webhook.close()
