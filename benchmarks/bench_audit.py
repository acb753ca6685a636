"""Benchmark: ``audit report`` over a 100,000-decision SQLite ledger, against a bare GROUP BY.

Why: an auditor asks for a quarter's governance figures and should get them in seconds. The
report verifies the whole hash chain, reads every decision of the period and aggregates it; this
measures that cost next to the least any report could do, a bare
``SELECT outcome, count(*) FROM decisions WHERE time in the period GROUP BY outcome``.

The ledger is generated once and cached under ``~/.cache/affidavit/bench/``: real Decision
objects (mixed outcomes, regions, clusters, namespaces, violations citing controls, evidence,
exceptions), spread over 2026, chained with the ledger's own canonical JSON and hash; the first
row goes through ``Ledger.append`` (schema, head row), the rest are inserted in one transaction
for speed (the chain is the same as appending one by one, and the report verifies it).

Run: ``.venv/bin/python benchmarks/bench_audit.py [--decisions N] [--rounds R]``. Prints seconds
for the report (with the chain check, the period query and the rendering broken out), for the
evidence pack, and for the baseline, and the ratio.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, insert, text, update

from affidavit.attestations.predicates import AI_PROVENANCE_V1, CODE_REVIEW_V1
from affidavit.audit.pack import build_pack
from affidavit.audit.render import render_html, render_markdown
from affidavit.audit.report import coverage_report
from affidavit.ledger import Ledger, canonical_json, chain_hash
from affidavit.ledger.schema import decision_images, decisions, ledger_head
from affidavit.policy.decision import Decision, EvidenceUsed, ImageRef, Violation

CACHE = Path.home() / ".cache" / "affidavit" / "bench"
START = datetime(2026, 1, 1, tzinfo=UTC)
VIOLATIONS = (
    Violation(
        "review.critical.independentApprovals",
        "preset/pci-dss",
        "0",
        "1",
        "review",
        None,
        "PCI DSS 6.2.3.1",
    ),
    Violation("provenance.present", "preset/soc2", "none", "signed", "attest", None, "SOC 2 CC8.1"),
    Violation("labels.owner", "AccountabilityPolicy/baseline", "none", "team", "label"),
)
OUTCOMES = ("allowed",) * 6 + ("denied", "warned", "audited", "excepted")


def _decision(i: int, rnd: random.Random) -> Decision:
    outcome = rnd.choice(OUTCOMES)
    region = rnd.choice(("eu-west-1", "us-east-1", "ap-south-1"))
    ref = f"registry.example/team{i % 40}/app:{i % 7}"
    digest = "sha256:" + f"{i % 5000:064x}"
    evidence = [EvidenceUsed(ref, AI_PROVENANCE_V1, digest, "ci")]
    if rnd.random() < 0.7:
        evidence.append(EvidenceUsed(ref, CODE_REVIEW_V1, digest, "ci"))
    violations = () if outcome == "allowed" else (rnd.choice(VIOLATIONS),)
    return Decision(
        id=f"bench-{i:07d}",
        time=(START + timedelta(seconds=i * 300)).isoformat().replace("+00:00", "Z"),
        cluster=f"{region}-prod-{i % 3}",
        region=region,
        namespace=f"ns-{i % 25}",
        kind="Deployment",
        name=f"app-{i % 400}",
        operation="CREATE",
        user="system:serviceaccount:ci:deployer",
        outcome=outcome,  # type: ignore[arg-type]
        mode="Enforce",
        images=(ImageRef(ref, digest),),
        violations=violations,
        evidence=tuple(evidence),
        exception=f"ns-{i % 25}/inc-{i % 9}" if outcome == "excepted" else None,
    )


def build(path: Path, n: int) -> None:
    rnd = random.Random(7)
    url = f"sqlite:///{path}"
    ledger = Ledger(url)
    first = ledger.append(_decision(0, rnd))
    prev, rows, images = first.hash, [], []
    for i in range(1, n):
        data = dataclasses.asdict(_decision(i, rnd))
        canonical = canonical_json(data)
        digest = chain_hash(prev, canonical)
        seq = i + 1
        rows.append(
            {
                "seq": seq,
                "id": data["id"],
                "time": datetime.fromisoformat(data["time"].replace("Z", "+00:00")).replace(
                    tzinfo=None
                ),
                "outcome": data["outcome"],
                "namespace": data["namespace"],
                "kind": data["kind"],
                "name": data["name"],
                "decision": canonical,
                "prev_hash": prev,
                "hash": digest,
            }
        )
        images += [{"seq": seq, "ref": im["ref"], "digest": im["digest"]} for im in data["images"]]
        prev = digest
    ledger.close()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(insert(decisions), rows)
        conn.execute(insert(decision_images), images)
        conn.execute(update(ledger_head).where(ledger_head.c.id == 1).values(seq=n, hash=prev))
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--decisions", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"audit-ledger-{args.decisions}.db"
    if not path.exists():
        t0 = time.perf_counter()
        tmp = path.with_suffix(".tmp.db")
        tmp.unlink(missing_ok=True)
        build(tmp, args.decisions)
        tmp.rename(path)
        print(f"built {path} in {time.perf_counter() - t0:.1f}s")
    url = f"sqlite:///{path}"
    since, until = START, START + timedelta(days=366)
    ledger = Ledger(url)
    engine = create_engine(url)
    baseline_sql = text(
        "SELECT outcome, count(*) FROM decisions WHERE time >= :s AND time < :u GROUP BY outcome"
    )
    best: dict[str, float] = {}

    for _ in range(args.rounds):
        t_all = time.perf_counter()
        t0 = time.perf_counter()
        chain = ledger.verify_chain()
        t1 = time.perf_counter()
        records = ledger.query(since=since, until=until, limit=None)
        t2 = time.perf_counter()
        report = coverage_report(
            records, chain, since=since, until=until, ledger_head=ledger.head()
        )
        t3 = time.perf_counter()
        render_markdown(report)
        render_html(report)
        t4 = time.perf_counter()
        for name, took in (
            ("verify_chain", t1 - t0),
            ("query", t2 - t1),
            ("aggregate", t3 - t2),
            ("render", t4 - t3),
            ("report", t4 - t_all),
        ):
            best[name] = min(best.get(name, float("inf")), took)
        t0 = time.perf_counter()
        build_pack(ledger, since=since, until=until)
        best["pack"] = min(best.get("pack", float("inf")), time.perf_counter() - t0)
        t0 = time.perf_counter()
        with engine.connect() as conn:
            bounds = {"s": since.replace(tzinfo=None), "u": until.replace(tzinfo=None)}
            counts = {str(o): int(c) for o, c in conn.execute(baseline_sql, bounds).all()}
        best["baseline"] = min(best.get("baseline", float("inf")), time.perf_counter() - t0)
    assert report["totals"]["decisions"] == sum(counts.values()) == args.decisions
    assert report["verdict"] == "intact"
    print(f"ledger: {args.decisions} decisions in SQLite, best of {args.rounds} rounds")
    for name in ("verify_chain", "query", "aggregate", "render"):
        print(f"  {name:<13} {best[name]:8.3f} s")
    print(
        f"report total    {best['report']:8.3f} s   (chain check + period query + figures + md/html)"
    )
    print(f"evidence pack   {best['pack']:8.3f} s")
    print(
        f"baseline        {best['baseline']:8.3f} s   (SELECT outcome, count(*) ... GROUP BY outcome)"
    )
    print(f"ratio report/baseline: {best['report'] / best['baseline']:.0f}x")


if __name__ == "__main__":
    main()
