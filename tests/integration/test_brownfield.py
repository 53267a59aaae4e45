"""Brownfield: the five guides' setups pasted by hand, then diagnosed, imported and adopted.

A private sandbox gets the apps' tables (examples/*/schema.sql, seed.sql) and each guide's SQL
(tests/brownfield/*.sql) run statement by statement as the app role, as a reader of the guide
would in the SQL editor. Then, as users do: ``doctor``, ``import`` by system, ``apply --adopt``.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cronkit import db as cdb
from cronkit_sandbox.manager import SandboxEnv
from tests.brownfield_support import FILES, Values, paste
from tests.helpers import wait_for
from tests.jobs_support import cli, output, private_sandbox

ROOT = Path(__file__).resolve().parents[2]
APPS = ("instagram-sync", "auto-sync", "bubble-sync", "scheduled-workflows", "tasty-mangoes")


@dataclass
class Guides:
    env: SandboxEnv
    values: Values
    log: Path

    def run(self, *args: str, cwd: Path, input: str | None = None) -> Any:
        return cli(*args, "--dsn", self.env.database_url, cwd=cwd, input=input)

    def doctor(self, cwd: Path) -> dict[str, Any]:
        result = self.run("doctor", "--json", cwd=cwd)
        assert result.returncode in (0, 1, 2), output(result)
        return json.loads(result.stdout)

    def jobs(self) -> dict[str, list[dict[str, Any]]]:
        with cdb.connect(self.env.superuser_url, autocommit=True) as su:
            rows = su.execute("select jobid, jobname, username, command from cron.job order by jobid").fetchall()
        found: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            found.setdefault(row["jobname"], []).append(row)
        return found

    def rename_vault_secret(self, old: str, new: str) -> None:
        with cdb.connect(self.env.superuser_url, autocommit=True) as su:
            su.execute("update vault.secrets set name = %s where name = %s", (new, old))

    def missing_finding(self, secret: str, cwd: Path) -> dict[str, Any]:
        """The doctor's SECRET_MISSING for ``secret`` while it is renamed away (put back afterwards)."""
        self.rename_vault_secret(secret, secret + "_renamed")
        try:
            found = findings(self.doctor(cwd)).get("SECRET_MISSING", [])
        finally:
            self.rename_vault_secret(secret + "_renamed", secret)
        [finding] = [f for f in found if f["evidence"]["secret"] == secret]
        return finding

    def starts(self, job: str) -> list[tuple[int, Any]]:
        """(jobid, start_time) of every run of ``job`` so far, oldest first."""
        with cdb.connect(self.env.superuser_url, autocommit=True) as su:
            rows = su.execute("select d.jobid, d.start_time from cron.job_run_details d join cron.job j using (jobid) "
                              "where j.jobname = %s and d.start_time is not null order by d.start_time", (job,)).fetchall()
        return [(r["jobid"], r["start_time"]) for r in rows]

    def secret_values(self) -> list[str]:
        return [self.values.service_role_key, self.values.cron_secret, self.values.scheduler_token]


@pytest.fixture(scope="module")
def guides(sandbox_only: Any) -> Iterator[Guides]:
    with private_sandbox("brownfield") as lab:
        values = Values(lab.env.supabase_url, lab.env.service_key)
        with cdb.connect(lab.env.database_url, autocommit=True) as app, \
                cdb.connect(lab.env.superuser_url, autocommit=True) as su:
            for name in APPS:
                for part in ("schema.sql", "seed.sql"):
                    app.execute((ROOT / "examples" / name / part).read_text(encoding="utf-8"))  # type: ignore[arg-type]
            for path in FILES:
                paste(path, values, app, su)
        yield Guides(lab.env, values, lab.log)


def findings(report: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for f in report["findings"]:
        found.setdefault(f["code"], []).append(f)
    return found


def test_the_doctor_on_the_pasted_guides_reports_what_is_true_and_no_false_alarm(guides: Guides, tmp_path: Path) -> None:
    found = findings(guides.doctor(tmp_path))
    assert [f["job"] for f in found["SECRET_INLINED"]] == ["escalate-overdue-bookings"]  # guide 003's pasted key
    [exposed] = found["SECRET_EXPOSED"]  # guide 004's app.settings.* are readable by every role
    assert exposed["severity"] == "warning" and exposed["evidence"]["secrets"] == ["service_role_key", "supabase_url"]
    critical = {code for code, fs in found.items() if any(f["severity"] == "critical" for f in fs)}
    assert critical == {"SECRET_INLINED"}, "secrets are all there: no SECRET_MISSING, no HTTP alarm"


def test_a_renamed_vault_secret_is_named_before_and_after_adoption_and_so_is_calling_nothing(
    guides: Guides, tmp_path: Path
) -> None:
    system = ("bubble-sync-processor", "bubble-sync-retry")
    missing = guides.missing_finding("service_role_key", tmp_path)
    assert "every run is recorded as succeeded and calls nothing" in missing["message"]
    assert missing["evidence"]["when_missing"] == dict.fromkeys(system, "calls nothing")

    manifest = tmp_path / "bubble.toml"
    imported = guides.run("import", "--project", "bubble-sync", *[a for j in system for a in ("--job", j)],
                          "-o", str(manifest), cwd=tmp_path)
    assert imported.returncode == 0, output(imported)
    adopted = guides.run("apply", str(manifest), "--adopt", "--yes", cwd=tmp_path)
    assert adopted.returncode == 0, output(adopted)

    missing = guides.missing_finding("service_role_key", tmp_path)
    assert "fail(s) every run without calling anything, naming the secret" in missing["message"]
    assert sorted(missing["evidence"]["jobs"]) == list(system)


def test_a_job_adopted_as_sql_keeps_its_findings_the_doctor_follows_it_into_the_wrapper(
    guides: Guides, tmp_path: Path
) -> None:
    """Adopted as an ``sql`` job, guide 000's job runs its old wrapper inside cronkit's: the doctor
    must still see the wrapper's secret reads, and still know what a missing one does."""
    before = guides.missing_finding("supabase_service_role_key", tmp_path)
    job = "process-instagram-imports"  # every 10 seconds
    wait_for(lambda: len(guides.starts(job)) >= 1, timeout=30, message=f"a run of {job} before adoption")
    manifest = tmp_path / "instagram.toml"
    manifest.write_text('project = "instagram-by-hand"\n[[jobs]]\nname = "process-instagram-imports"\n'
                        'schedule = "10 seconds"\nsql = "SELECT invoke_instagram_worker();"\n', encoding="utf-8")
    adopted = guides.run("apply", str(manifest), "--adopt", "--yes", cwd=tmp_path)
    assert adopted.returncode == 0, output(adopted)
    adopted_at = len(guides.starts(job))
    wait_for(lambda: len(guides.starts(job)) >= adopted_at + 2, timeout=40, message=f"two runs of {job} after adoption")
    starts = guides.starts(job)
    assert {jobid for jobid, _ in starts} == {guides.jobs()[job][0]["jobid"]}, "one job throughout: its id kept"
    gaps = [(b - a).total_seconds() for (_, a), (_, b) in zip(starts, starts[1:], strict=False)]
    assert all(5 <= gap <= 15 for gap in gaps), f"no double run and no skipped run across the adoption: {gaps}"
    after = guides.missing_finding("supabase_service_role_key", tmp_path)
    for finding in (before, after):
        assert finding["evidence"]["jobs"] == ["process-instagram-imports"]
        assert finding["evidence"]["when_missing"] == {"process-instagram-imports": "fails"}
    assert after["evidence"]["declared_in"] == ["registry"] and before["evidence"]["declared_in"] == ["command"]


def test_each_system_imports_as_http_jobs_and_adopts_keeping_ids_with_nothing_left_to_change(
    guides: Guides, tmp_path: Path
) -> None:
    before = guides.jobs()
    listing = guides.run("import", "--json", cwd=tmp_path)
    assert listing.returncode == 0, output(listing)
    systems = json.loads(listing.stdout)["systems"]
    assert ["auto-sync-cron-job"] in systems and ["escalate-overdue-bookings"] in systems
    assert not any("process-instagram-imports" in names for names in systems), "adopted above: not foreign"
    assert ["daily_refresh_enqueue", "refresh_worker", "scheduled_ingest_daily", "scheduled_ingest_weekly"] in systems
    shown = [listing.stdout]

    for index, names in enumerate(systems):
        path = tmp_path / f"system-{index}.toml"
        result = guides.run("import", "--json", "--project", f"guides-{index}", *[a for n in names for a in ("--job", n)],
                            "-o", str(path), cwd=tmp_path)
        assert result.returncode == 0, output(result)
        report = json.loads(result.stdout)
        assert [j["kind"] for j in report["jobs"]] == ["http"] * len(names), report["jobs"]
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
        assert all("url" in job and "sql" not in job for job in data["jobs"])
        for name in [n for j in report["jobs"] for n in j["secrets_to_store"]]:
            stored = guides.run("secrets", "set", name, "--manifest", str(path), cwd=tmp_path,
                                input=guides.values.service_role_key)
            assert stored.returncode == 0, output(stored)
        refused = guides.run("plan", str(path), cwd=tmp_path)
        assert refused.returncode == 1 and "--adopt" in refused.stdout
        adopted = guides.run("apply", str(path), "--adopt", "--yes", cwd=tmp_path)
        assert adopted.returncode == 0, output(adopted)
        again = guides.run("plan", str(path), "--json", cwd=tmp_path)
        assert json.loads(again.stdout)["summary"]["unchanged"] == len(names), output(again)
        shown += [text, refused.stdout, adopted.stdout, again.stdout]

    after = guides.jobs()
    assert {n: [r["jobid"] for r in rows] for n, rows in after.items()} == {
        n: [r["jobid"] for r in rows] for n, rows in before.items()}, "every job kept its id; none was added"
    assert all(rows[0]["command"].startswith('SELECT "cronkit".') for rows in after.values())
    status = json.loads(guides.run("status", "--json", cwd=tmp_path).stdout)
    assert all(job["managed_by"] for job in status)
    for value in guides.secret_values():
        assert all(value not in text for text in shown), "a secret value reached an import, plan or apply output"
        assert value not in guides.log.read_text(encoding="utf-8", errors="replace")

    found = findings(guides.doctor(tmp_path))
    assert "SECRET_INLINED" not in found, "the pasted key now lives in the secrets backend"
    assert [f["evidence"]["secrets"] for f in found["SECRET_EXPOSED"]] == [["service_role_key", "supabase_url"]]
    assert not {code for code, fs in found.items() if any(f["severity"] == "critical" for f in fs)}
