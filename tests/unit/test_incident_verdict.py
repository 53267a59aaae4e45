"""The incident runbook's verdict, from reports built here (no database): the root cause is the
finding nothing else explains, its chain runs cause → consequences, the fix is the doctor's own
command for the job's backend, and a healthy report gets a calm verdict, never a made-up cause."""

from __future__ import annotations

import shlex
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cronkit import doctor
from cronkit.cli.parser import build_parser
from cronkit.doctor import causes
from cronkit.doctor.context import store_command
from cronkit.manifest import SecretsConfig, load_manifest
from cronkit.runbooks import incident

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
TABLE = ("table", "public.pg_cron_secrets", "key", "value")
STORE = store_command(TABLE, "service_role_key")


def finding(code: str, job: str | None = None, severity: str | None = None, fix: str = "", message: str = "",
            **evidence: Any) -> doctor.Finding:
    entry = doctor.CATALOGUE[code]
    return doctor.Finding(code=code, severity=doctor.Severity(severity or entry.severity), job=job, evidence=evidence,
                          fix=fix or entry.fix, message=message or f"{code} on {job}. More detail here.")


def report(*findings: doctor.Finding) -> doctor.Report:
    ordered = sorted(findings, key=lambda f: (f.severity.rank, doctor.catalogue.order(f.code), f.job or ""))
    return doctor.Report(findings=ordered, skipped=[("DST_DRIFT", "needs a manifest")], checked=list(doctor.CATALOGUE)[:30],
                         server={}, generated_at=NOW, window=timedelta(hours=6))


def unauthorized(job: str = "auto-sync-cron-job") -> doctor.Finding:
    return finding("HTTP_UNAUTHORIZED", job, failed=7, causes={"invalid_jwt": 7},
                   auth_secrets=[{"secret": "service_role_key", "backend": "table public.pg_cron_secrets",
                                  "store_with": STORE, "state": "present"}])


def backlog(job: str = "auto-sync-cron-job", table: str = "public.sync_queue") -> doctor.Finding:
    return finding("QUEUE_BACKLOG", job, table=table, pending=340, jobs=[job])


# -- the relation ---------------------------------------------------------------------------------


def test_every_code_in_the_table_of_causes_is_in_the_catalogue() -> None:
    for effect, reasons in causes.CAUSED_BY.items():
        assert effect in doctor.CATALOGUE, effect
        assert reasons and set(reasons) <= set(doctor.CATALOGUE), effect


def test_the_table_of_causes_has_no_cycle() -> None:
    def reaches(start: str, target: str, seen: frozenset[str] = frozenset()) -> bool:
        return any(c == target or (c not in seen and reaches(c, target, seen | {c})) for c in causes.CAUSED_BY.get(start, ()))

    assert [code for code in causes.CAUSED_BY if reaches(code, code)] == []


def test_findings_about_different_jobs_do_not_explain_each_other() -> None:
    assert causes.explains(unauthorized("a"), backlog("a"))
    assert not causes.explains(unauthorized("a"), backlog("b"))
    assert causes.explains(finding("SCHEDULER_DOWN"), finding("MISSED_RUNS", "a"))  # a server-wide cause
    assert not causes.explains(backlog("a"), unauthorized("a"))  # never backwards


# -- the verdict ----------------------------------------------------------------------------------


def test_the_cause_is_picked_over_its_consequences_whatever_their_order() -> None:
    missing = finding("SECRET_MISSING", "a", secret="service_role_key", backend="Vault", jobs=["a"],
                      fix="`cronkit secrets set service_role_key --backend vault` (value from stdin) or ...")
    # the 401 sorts first (same severity, its section runs earlier): still a consequence
    found = report(finding("HTTP_UNAUTHORIZED", "a", failed=3, causes={"missing_authorization_header": 3}), missing)
    assert [f.code for f in found.findings] == ["HTTP_UNAUTHORIZED", "SECRET_MISSING"]
    v = incident.verdict(found)
    assert v.root is missing
    assert v.chain == ("secret service_role_key missing from Vault", "401 on a (3 call(s))")
    assert v.fix is not None and v.fix.commands == ("cronkit secrets set service_role_key --backend vault",)
    assert [f.code for f in v.explains] == ["HTTP_UNAUTHORIZED"]


def test_a_stale_table_key_reads_key_then_401_then_backlog_and_names_the_table_secret() -> None:
    v = incident.verdict(report(backlog(), unauthorized(), finding("QUEUE_BACKLOG", "other", table="public.q2", pending=1,
                                                                    jobs=["other"])))
    assert v.root is not None and v.root.code == "HTTP_UNAUTHORIZED"
    assert v.chain == ("stale key in table public.pg_cron_secrets (service_role_key)",
                       "401 on auto-sync-cron-job (7 call(s))", "queue public.sync_queue backlog (340 pending)")
    assert "'auto-sync-cron-job'" in v.sentence and "'service_role_key'" in v.sentence
    assert "table public.pg_cron_secrets" in v.sentence and v.sentence.count(". ") == 0
    assert v.fix is not None and v.fix.commands == ("cronkit secrets set service_role_key --table public.pg_cron_secrets",)


def test_the_fix_command_is_one_the_cli_accepts() -> None:
    v = incident.verdict(report(unauthorized()))
    assert v.fix is not None
    for command in v.fix.commands:
        argv = shlex.split(command)
        args = build_parser().parse_args(argv[1:])
        assert (args.name, args.table) == ("service_role_key", "public.pg_cron_secrets")


def test_the_runbook_is_offered_when_the_key_lives_in_the_manifests_backend(tmp_path: Path) -> None:
    path = tmp_path / "cronkit.toml"
    path.write_text('project = "p"\n[secrets]\nbackend = "table"\ntable = "public.pg_cron_secrets"\n', encoding="utf-8")
    manifest = load_manifest(path)
    assert manifest.secrets == SecretsConfig(backend="table", table="public.pg_cron_secrets")
    v = incident.verdict(report(unauthorized()), manifest=manifest)
    assert v.fix is not None
    assert v.fix.runbook == f"marimo run runbooks/rotate_secret.py -- --manifest {path} --secret service_role_key"


def test_a_command_with_name_gets_the_job_filled_in_and_a_generic_one_is_left_out() -> None:
    failing = finding("CONSECUTIVE_FAILURES", "import-sync", failed_in_a_row=2,
                      message="Job 'import-sync' failed its last 2 run(s): ERROR: relation \"q\" does not exist")
    v = incident.verdict(report(failing))
    assert v.chain == ("import-sync failed 2 run(s) in a row",)
    assert v.sentence == "Job 'import-sync' failed its last 2 run(s): ERROR: relation \"q\" does not exist."
    assert v.fix is not None and v.fix.commands == ("cronkit run-now import-sync",)


def test_a_healthy_report_has_a_calm_verdict_and_no_cause() -> None:
    v = incident.verdict(report(finding("GUC_SECRETS_UNSUPPORTED", severity="info")))
    assert v.healthy and v.root is None and v.chain == () and v.fix is None
    assert v.sentence.startswith("No problem found in the last 6 h: 30 checks ran (scheduler, jobs, runs, http")


def test_findings_about_other_jobs_are_no_cause_of_this_manifests_incident() -> None:
    v = incident.verdict(report(unauthorized("someone-elses-job")), scope=["auto-sync-cron-job"])
    assert v.healthy and "1 finding(s) concern jobs outside this manifest" in v.sentence


# -- evidence as a person reads it --------------------------------------------------------------------


@pytest.mark.parametrize(("value", "shown"), [
    ((NOW - timedelta(minutes=3)).isoformat(), "3 min ago"),
    ('ERROR:  relation "q" does not exist\nLINE 1: select', 'ERROR:  relation "q" does not exist\nLINE 1: select'),
    ({"invalid_jwt": 7}, "invalid_jwt: 7"),
    (["https://a/functions/v1/x", "https://b"], "https://a/functions/v1/x, https://b"),
    (None, ""),
])
def test_evidence_values_read_as_text(value: Any, shown: str) -> None:
    assert incident.evidence_text(value, NOW) == shown


def test_evidence_is_tables_that_wrap_with_real_newlines_and_no_json() -> None:
    page = incident.evidence_html({"failed_in_a_row": 2, "recent_failures": [
        {"runid": 7, "start_time": (NOW - timedelta(minutes=2)).isoformat(), "return_message": "ERROR: one\nLINE 1: two"}]}, NOW)
    assert "white-space:pre-wrap" in page and "overflow-wrap:anywhere" in page
    assert "ERROR: one\nLINE 1: two" in page and "\\n" not in page and "{" not in page
    assert "2 min ago" in page and "<th" in page


def test_a_fix_with_a_step_only_the_reader_can_name_is_shown_whole_in_words_not_as_half_the_commands() -> None:
    from cronkit.runbooks.incident import _fix
    from cronkit.runbooks.runtime import esc

    exposed = doctor.Finding(
        "SECRET_EXPOSED", doctor.Severity.WARNING, None, {},
        fix="Move the secrets to Vault: `cronkit secrets set NAME`, re-apply (for a hand-made job: `cronkit import` "
            "writes the manifest).",
        message="2 secret(s) in database settings app.settings.* are readable by every role.")
    fix = _fix(exposed, None)
    assert fix.commands == () and "cronkit secrets set NAME" in fix.text
    assert "*" not in esc("app.settings.*")  # would turn the bold verdict into italics
