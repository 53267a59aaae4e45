"""The manifest's ``overlap`` key and the wrapper code it generates (the behaviour on a live
database: tests/integration/test_overlap.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cronkit.errors import ManifestError
from cronkit.manifest import Overlap, SecretsConfig, parse_manifest
from cronkit.secrets import backend_for
from cronkit.wrappers import render_wrapper, spec_hash


def _spec(**job: Any) -> Any:
    data = {"project": "p", "jobs": [{"name": "slow", "schedule": "2 seconds", "url": "https://example.test/x", **job}]}
    return parse_manifest(data, Path("cronkit.toml")).resolve(None, {})[0]


def test_overlap_is_allowed_unless_the_manifest_says_skip() -> None:
    assert _spec().overlap is Overlap.ALLOW
    assert _spec(overlap="skip").overlap is Overlap.SKIP


def test_it_rejects_an_overlap_policy_it_does_not_know() -> None:
    with pytest.raises(ManifestError) as caught:
        _spec(overlap="queue")
    assert "jobs[0].overlap: 'queue' is not one of allow, skip" in caught.value.message


def test_a_skipping_wrapper_locks_the_job_and_asks_whether_its_call_is_in_flight_before_anything_else() -> None:
    backend = backend_for(SecretsConfig())
    skip = render_wrapper(_spec(overlap="skip", timeout_ms=20000, guard="true"), backend, "p")
    body = skip.body
    assert body.index("pg_try_advisory_xact_lock(hashtext('cronkit.overlap'), hashtext('slow'))") < body.index("true")
    assert "cronkit.call_in_flight('slow', '80000 milliseconds'::interval)" in body
    assert body.count("INSERT INTO cronkit.skipped_runs") == 2
    assert 'cronkit: job "slow" skipped: overlap: ' in body


def test_allowing_overlap_generates_the_wrapper_as_before_and_changing_it_changes_the_hash() -> None:
    backend = backend_for(SecretsConfig())
    allow, skip = (render_wrapper(_spec(overlap=o), backend, "p") for o in ("allow", "skip"))
    assert "overlap" not in allow.body and allow.body == render_wrapper(_spec(), backend, "p").body
    assert spec_hash(allow, "2 seconds", True) != spec_hash(skip, "2 seconds", True)
