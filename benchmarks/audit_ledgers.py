"""Ledgers of N real decisions for ``bench_audit``, built fast and cached.

Building a million decisions through ``Ledger.append`` would take an hour; the report does not
care how the rows got there, only that they are valid, chained rows. So the rows are made from
real ``Decision`` objects (the ledger's canonical JSON and chain hash), written in bulk: SQLite
with ``executemany`` in one transaction, PostgreSQL with ``COPY``. The decisions are spread
evenly over 2026 whatever N is (the old fixed 5-minute period ran out of year above 105,408), and
look like a real cluster's: Deployments with their ReplicaSets and Pods (judged separately when
no owner chain is configured), StatefulSets, four regions, a new image digest every few dozen
rollouts, violations citing controls, break-glass exceptions. The SQLite file and a PostgreSQL
data directory are cached under ``~/.cache/affidavit/bench/``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from affidavit.attestations.predicates import AI_PROVENANCE_V1, CODE_REVIEW_V1
from affidavit.ledger import GENESIS_HASH, Ledger, canonical_json, chain_hash
from affidavit.policy.decision import Decision, EvidenceUsed, ImageRef, PolicyRef, Violation

CACHE = Path.home() / ".cache" / "affidavit" / "bench"
START = datetime(2026, 1, 1, tzinfo=UTC)
YEAR = timedelta(days=365)
REGIONS = ("eu-west-1", "eu-central-1", "us-east-1", "ap-south-1")
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # Kubernetes' generated-name alphabet
VIOLATIONS = (
    Violation(
        "review.critical.independentApprovals",
        "preset/pci-dss",
        "0 independent approvals on the final revision",
        "at least 1",
        "get an approval from a reviewer who is not the author",
        None,
        "PCI DSS 6.2.3.1",
    ),
    Violation(
        "review.critical.securityReview",
        "preset/pci-dss",
        "no security review",
        "a review from the security group",
        "ask the security group to review",
        None,
        "PCI DSS 6.2.4",
    ),
    Violation(
        "provenance.required",
        "preset/soc2",
        "no signed ai-provenance attestation",
        "one signed by a trusted CI key",
        "run affidavit attest in the pipeline",
        None,
        "SOC 2 CC8.1",
    ),
    Violation(
        "tools.details",
        "preset/us-fedramp-moderate",
        "tool without a version",
        "tool, model and version",
        "upgrade the collector",
        None,
        "NIST SP 800-53 SA-15",
    ),
    Violation("labels.owner", "AccountabilityPolicy/baseline", "none", "team", "add the label"),
)
OUTCOMES = ("allowed",) * 12 + ("denied",) * 2 + ("warned", "audited", "excepted")


def _suffix(rnd: random.Random, n: int) -> str:
    return "".join(rnd.choice(_ALPHABET) for _ in range(n))


def decision(i: int, n: int, rnd: random.Random) -> Decision:
    """The ``i``-th of ``n`` decisions: spread evenly over 2026, microsecond times."""
    outcome = rnd.choice(OUTCOMES)
    region = REGIONS[i % len(REGIONS)]
    app = f"app-{i % 400}"
    build = i // 20_000  # each app is rebuilt every ~50 of its rollouts
    ref = f"registry.example/team{i % 40}/{app}:1.{build}"
    digest = "sha256:" + hashlib.sha256(f"{app}/{build}".encode()).hexdigest()
    evidence = [EvidenceUsed(ref, AI_PROVENANCE_V1, "sha256:" + "e" * 64, "ci-release-key")]
    if rnd.random() < 0.8:
        evidence.append(EvidenceUsed(ref, CODE_REVIEW_V1, "sha256:" + "f" * 64, "ci-release-key"))
    violations = () if outcome == "allowed" else (rnd.choice(VIOLATIONS),)
    kind, name = "Deployment", app
    pick = rnd.random()
    if pick < 0.15:
        kind, name = "ReplicaSet", f"{app}-{_suffix(rnd, 10)}"
    elif pick < 0.35:
        kind, name = "Pod", f"{app}-{_suffix(rnd, 10)}-{_suffix(rnd, 5)}"
    elif pick < 0.40:
        kind, name = "StatefulSet", f"db-{i % 50}"
    when = START + YEAR * i / n + timedelta(microseconds=rnd.randrange(1, 999_999))
    return Decision(
        id=str(uuid.UUID(int=rnd.getrandbits(128), version=4)),
        time=when.isoformat().replace("+00:00", "Z"),
        cluster=f"{region}-prod-{i % 3}",
        region=region,
        namespace=f"ns-{i % 25}",
        kind=kind,
        name=name,
        operation="CREATE",
        user="system:serviceaccount:ci:deployer",
        outcome=outcome,  # type: ignore[arg-type]
        mode="Enforce",
        images=(ImageRef(ref, digest),),
        violations=violations,
        evidence=tuple(evidence),
        policies=(PolicyRef("AccountabilityPolicy", "baseline", 3), PolicyRef("preset", "soc2")),
        exception=f"ns-{i % 25}/inc-{i % 9}" if outcome == "excepted" else None,
    )


Row = tuple[int, str, str, str, str, str, str, str, str, str, list[tuple[str, str | None]]]


def rows(n: int) -> Iterator[Row]:
    """(seq, id, time column, outcome, namespace, kind, name, json, prev_hash, hash, images)."""
    rnd = random.Random(7)
    prev = GENESIS_HASH
    for i in range(n):
        data = dataclasses.asdict(decision(i, n, rnd))
        canonical = canonical_json(data)
        digest = chain_hash(prev, canonical)
        column = data["time"].replace("T", " ").rstrip("Z")
        column = column if "." in column else column + ".000000"
        images = [(im["ref"], im["digest"]) for im in data["images"]]
        yield (
            i + 1,
            data["id"],
            column,
            data["outcome"],
            data["namespace"],
            data["kind"],
            data["name"],
            canonical,
            prev,
            digest,
            images,
        )
        prev = digest


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def sqlite_ledger(n: int) -> str:
    """The URL of a cached SQLite ledger of ``n`` decisions (built on first use)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"audit-v3-{n}.db"
    if not path.exists():
        t0 = time.perf_counter()
        tmp = path.with_suffix(".tmp.db")
        tmp.unlink(missing_ok=True)
        writer = Ledger(f"sqlite:///{tmp}")
        writer.head()  # the schema and the head row, as a writer makes them
        writer.close()
        con = sqlite3.connect(tmp)
        con.execute("PRAGMA journal_mode=OFF")
        con.execute("PRAGMA synchronous=OFF")
        last = (0, GENESIS_HASH)
        batch: list[Row] = []

        def flush() -> None:
            con.executemany(
                "INSERT INTO decisions (seq,id,time,outcome,namespace,kind,name,decision,"
                "prev_hash,hash) VALUES (?,?,?,?,?,?,?,?,?,?)",
                [r[:10] for r in batch],
            )
            con.executemany(
                "INSERT INTO decision_images (seq, ref, digest) VALUES (?,?,?)",
                [(r[0], ref, dg) for r in batch for ref, dg in r[10]],
            )
            batch.clear()

        for row in rows(n):
            batch.append(row)
            last = (row[0], row[9])
            if len(batch) == 20_000:
                flush()
        flush()
        con.execute("UPDATE ledger_head SET seq = ?, hash = ? WHERE id = 1", last)
        con.commit()
        con.execute("PRAGMA journal_mode=WAL")
        con.close()
        tmp.rename(path)
        _log(f"built {path} in {time.perf_counter() - t0:.0f}s")
    return f"sqlite:///{path}"


class CachedPostgres:
    """Debian's PostgreSQL on a data directory kept in the cache (started and stopped per run)."""

    def __init__(self) -> None:
        bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
        if not bins:
            raise RuntimeError("PostgreSQL is not installed (scripts/install-debs)")
        self.bindir = bins[0].parent
        import os
        import shutil

        self.run_as: list[str] = []
        self.base = CACHE / "pg"
        if os.geteuid() == 0:  # initdb refuses to run as root; postgres cannot enter ~root
            self.base = Path("/var/tmp/affidavit-bench-pg")
            self.run_as = ["runuser", "-u", "postgres", "--"]
        self.data = self.base / "data"
        self.port = 55431
        self.base.mkdir(parents=True, exist_ok=True)
        if self.run_as:
            shutil.chown(self.base, "postgres", "postgres")
        if not (self.data / "PG_VERSION").exists():
            initdb = [str(self.bindir / "initdb"), "-D", str(self.data), "-U", "affidavit"]
            subprocess.run(
                [*self.run_as, *initdb, "--auth=trust"],
                check=True,
                capture_output=True,
            )

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            [*self.run_as, str(self.bindir / "pg_ctl"), "-D", str(self.data), *args],
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.base} -c fsync=off "
            "-c shared_buffers=256MB"
        )
        self._ctl("-l", str(self.base / "pg.log"), "-o", options, "-w", "start")

    def stop(self) -> None:
        self._ctl("-m", "fast", "-w", "stop")

    def url(self, db: str) -> str:
        return f"postgresql+psycopg://affidavit@127.0.0.1:{self.port}/{db}"

    def ledger(self, n: int) -> str:
        """The URL of database ``audit_N`` holding the ledger of ``n`` decisions (built once)."""
        import psycopg

        db = f"audit_v3_{n}"
        admin = f"host=127.0.0.1 port={self.port} user=affidavit dbname=postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,)).fetchone()
            if exists:
                with psycopg.connect(admin.replace("postgres", db)) as c:
                    done = c.execute("SELECT seq FROM ledger_head").fetchone()
                if done and done[0] == n:
                    return self.url(db)
                conn.execute(f"DROP DATABASE {db}")
            conn.execute(f"CREATE DATABASE {db}")
        t0 = time.perf_counter()
        writer = Ledger(self.url(db))
        writer.head()  # the schema and the head row
        writer.close()
        last = (0, GENESIS_HASH)
        # the same rows as the SQLite ledger (copied from it: generating them again is slower)
        source = sqlite3.connect(sqlite_ledger(n).removeprefix("sqlite:///"))
        with psycopg.connect(admin.replace("postgres", db)) as conn:
            with conn.cursor() as cur:
                with cur.copy(
                    "COPY decisions (seq,id,time,outcome,namespace,kind,name,decision,"
                    "prev_hash,hash) FROM STDIN"
                ) as copy:
                    for row in source.execute(
                        "SELECT seq,id,time,outcome,namespace,kind,name,decision,prev_hash,hash "
                        "FROM decisions ORDER BY seq"
                    ):
                        copy.write_row(row)
                        last = (row[0], row[9])
                with cur.copy("COPY decision_images (seq, ref, digest) FROM STDIN") as copy:
                    for image in source.execute("SELECT seq, ref, digest FROM decision_images"):
                        copy.write_row(image)
                cur.execute("UPDATE ledger_head SET seq = %s, hash = %s WHERE id = 1", last)
            conn.execute("ANALYZE")
        source.close()
        _log(f"built PostgreSQL {db} in {time.perf_counter() - t0:.0f}s")
        return self.url(db)
