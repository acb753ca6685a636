"""Policies from files: loading a directory of YAML, reloading on change, keeping the last good
index when an edit is broken (an unknown field included, naming it for /readyz), and the exact
errors for bad input."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from affidavit.admission.policy_source import FilePolicySource, NamespaceLabels, load_policy_files
from affidavit.errors import PolicyError

PEM = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAtest\n-----END PUBLIC KEY-----\n"


def _policy(name: str) -> dict[str, object]:
    return {
        "apiVersion": "affidavit.dev/v1alpha1",
        "kind": "AccountabilityPolicy",
        "metadata": {"name": name},
        "spec": {"mode": "Enforce", "signers": {"keys": [{"name": "ci", "publicKey": PEM}]}},
    }


def _write(path: Path, *names: str) -> None:
    path.write_text(yaml.safe_dump_all([_policy(n) for n in names]))
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # a visible change


def test_directory_is_loaded_and_reloaded_on_change(tmp_path: Path) -> None:
    _write(tmp_path / "a.yaml", "one")
    (tmp_path / "nested").mkdir()
    _write(tmp_path / "nested" / "b.yml", "two")
    source = FilePolicySource(tmp_path, interval=0)
    source.start()
    index = source.current()
    assert index is not None
    assert [p.name for p in index.policies] == ["one", "two"]
    _write(tmp_path / "a.yaml", "one", "three")
    index = source.current()
    assert index is not None
    assert [p.name for p in index.policies] == ["one", "three", "two"]


def test_a_broken_edit_keeps_the_last_index(tmp_path: Path) -> None:
    _write(tmp_path / "a.yaml", "one")
    source = FilePolicySource(tmp_path, interval=0)
    first = source.current()
    (tmp_path / "a.yaml").write_text("kind: ConfigMap\n")
    assert source.current() is first
    assert source.last_error == (
        f"{tmp_path / 'a.yaml'} document 1 has kind 'ConfigMap'; expected one of "
        "AccountabilityPolicy, RegionPolicy, AccountabilityException"
    )


def test_an_unknown_field_keeps_the_last_index_and_names_the_problem(tmp_path: Path) -> None:
    """Issue 7 item 20: a typo must not drop the policy while the webhook reports ready."""
    _write(tmp_path / "a.yaml", "one")
    _write(tmp_path / "b.yaml", "two")
    source = FilePolicySource(tmp_path, interval=0)
    first = source.current()
    assert first is not None and source.problem() is None
    typo = _policy("two")
    typo["spec"] = {**typo["spec"], "require": {"ownerLabels": "team"}}  # type: ignore[dict-item]
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(typo))
    assert source.current() is first
    assert [p.name for p in first.policies] == ["one", "two"]
    problem = (
        f"invalid policy objects: AccountabilityPolicy/two in {tmp_path / 'b.yaml'}: "
        "spec.require.ownerLabels: unknown field"
    )
    assert source.problem() == problem
    with pytest.raises(PolicyError) as e:
        load_policy_files(tmp_path)
    assert (e.value.message, e.value.hint) == (
        problem,
        "fix the named fields (an unknown field is an error, so that a typo never silently "
        "weakens a policy); the webhook keeps the last good policy index meanwhile",
    )
    _write(tmp_path / "b.yaml", "two")
    assert source.problem() is None
    assert source.current() is not first


def test_an_unknown_top_level_field_is_an_error(tmp_path: Path) -> None:
    doc = _policy("one")
    doc["sepc"] = doc.pop("spec")
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(PolicyError) as e:
        load_policy_files(tmp_path)
    assert e.value.message == (
        f"invalid policy objects: AccountabilityPolicy/one in {tmp_path / 'a.yaml'}: sepc: "
        "unknown field (expected apiVersion, kind, metadata, spec, status)"
    )


def test_missing_path_is_an_actionable_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as e:
        load_policy_files(tmp_path / "absent")
    assert e.value.message == f"policy path {tmp_path / 'absent'} does not exist"
    assert FilePolicySource(tmp_path / "absent").current() is None


def test_namespace_labels_without_a_cluster_have_only_the_name() -> None:
    assert NamespaceLabels().labels("shop") == {"kubernetes.io/metadata.name": "shop"}
