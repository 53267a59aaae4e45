"""[alerts] validation: every error names the key and the fix; the job never holds a secret."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cronkit.alerts import AlertCheck, alert_settings, alerts_job
from cronkit.errors import ManifestError
from cronkit.maintenance import maintenance_jobs
from cronkit.manifest import parse_manifest

ROOT = Path(__file__).resolve().parents[2]


def manifest(alerts: dict[str, Any]) -> Any:
    return parse_manifest({"project": "shop", "jobs": [{"name": "sync", "schedule": "* * * * *", "url": "https://x/y"}],
                           "alerts": alerts})


SLACK = {"ops": {"kind": "slack", "url": "{secret:slack_webhook}"}}


@pytest.mark.parametrize(("alerts", "key", "fix"), [
    ({"channels": {"ops": {"kind": "slack", "url": "https://hooks.slack.com/services/T/B/X"}}}, "channels.ops.url", "{secret:NAME}"),
    ({"channels": {"ops": {"kind": "teams", "url": "{secret:a}"}}}, "channels.ops.kind", None),
    ({"channels": {"ops": {"kind": "slack"}}}, "channels.ops.url", "cronkit secrets set"),
    ({"channels": {"ops": {"kind": "slack", "url": "{secret:a}", "key": "{secret:b}"}}}, "channels.ops.key", "Remove it"),
    ({"channels": SLACK, "rules": [{"check": "missed"}]}, "rules[0].check", "cronkit doctor"),
    ({"channels": SLACK, "rules": [{"check": "failed_runs", "jobs": ["nope"]}]}, "rules[0].jobs", "Jobs are: sync"),
    ({"channels": SLACK, "rules": [{"check": "failed_runs", "channels": ["pager"]}]}, "rules[0].channels", "[alerts.channels.NAME]"),
    ({"channels": SLACK, "rules": [{"check": "failed_runs", "threshold": 0}]}, "rules[0].threshold", None),
    ({"channels": SLACK, "rules": [{"check": "failed_runs"}, {"check": "failed_runs"}]}, "rules[1].name", "`name`"),
    ({"channels": SLACK, "rules": [{"check": "http_failures", "max_age": "1 hour"}]}, "rules[0].max_age", None),
    ({"channels": SLACK, "rules": [{"check": "failed_runs", "grace": "1 hour"}]}, "rules[0].grace", None),
    ({"channels": SLACK, "realert": "soon"}, "realert", "1 hour"),
    ({"channels": SLACK, "schedule": "61 * * * *"}, "schedule", None),
    ({"channel": SLACK}, "channel", "Known keys"),
])
def test_a_wrong_alerts_table_names_the_key_and_the_fix(alerts: dict[str, Any], key: str, fix: str | None) -> None:
    with pytest.raises(ManifestError) as caught:
        alert_settings(manifest(alerts))
    assert f": alerts.{key}:" in caught.value.message
    if fix:
        assert fix in (caught.value.remedy or "") + caught.value.message


def test_rules_default_to_every_job_and_every_channel() -> None:
    settings = alert_settings(manifest({"channels": SLACK, "rules": [{"check": "http_failures"}]}))
    assert settings is not None
    [rule] = settings.rules
    assert (rule.check, rule.subjects, rule.channels, rule.threshold) == (AlertCheck.HTTP_FAILURES, ("sync",), ("ops",), 1)


def test_the_alerts_job_reads_webhook_urls_by_name_and_holds_no_value() -> None:
    m = manifest({"channels": SLACK, "rules": [{"check": "failed_runs"}]})
    job = alerts_job(m, "cronkit-alerts:shop")
    assert job is not None and job.kind == "sql"
    assert "vault.decrypted_secrets WHERE name = 'slack_webhook'" in (job.sql or "")
    assert [j.name for j in maintenance_jobs(m)] == ["cronkit-alerts:shop"]


def test_no_rules_or_enabled_false_means_no_job() -> None:
    assert maintenance_jobs(manifest({"channels": SLACK})) == []
    assert maintenance_jobs(manifest({"enabled": False, "channels": SLACK, "rules": [{"check": "failed_runs"}]})) == []


def test_the_reference_documents_every_alerts_key() -> None:
    from cronkit.alerts import KEYS

    text = (ROOT / "docs/manifest.md").read_text(encoding="utf-8").split("## `[alerts]`", 1)[1].split("\n## ", 1)[0]
    assert [key for keys in KEYS.values() for key in keys if f"| `{key}` |" not in text] == []


def test_a_silent_rule_knows_the_longest_gap_of_every_schedule_its_jobs_have_in_any_environment() -> None:
    from cronkit.schedules import parse_schedule

    m = parse_manifest({
        "project": "shop", "jobs": [{"name": "sync", "schedule": "0 9 * * 1-5", "url": "https://x/y"}],
        "environments": {"sandbox": {"jobs": {"sync": {"schedule": "5 seconds"}}}, "prod": {}},
        "alerts": {"channels": SLACK, "rules": [{"check": "silent", "grace": "10 minutes"}]},
    }, Path("cronkit.toml"))
    settings = alert_settings(m)
    assert settings is not None
    [rule] = settings.rules
    assert (rule.check, rule.subjects, rule.grace.total_seconds() if rule.grace else None) == (AlertCheck.SILENT, ("sync",), 600)
    assert dict(rule.gaps) == {"0 9 * * 1-5": 3 * 86400, "5 seconds": 5}  # a weekend between two weekday runs
    assert rule.as_json()["gaps"] == dict(rule.gaps) and rule.as_json()["grace_s"] == 600
    assert parse_schedule("@reboot").longest_gap() is None and parse_schedule("0 0 30 2 *").longest_gap() is None
