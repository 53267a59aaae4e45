"""examples/grafana: the alert rules pass promtool and fire as intended; the dashboard and the rules
only name metric families the exporter exposes."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cronkit.exporter import FAMILIES

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "examples" / "grafana"
#: ./dev setup unpacks promtool into the venv (from Debian's prometheus package)
_IN_VENV = Path(sys.executable).parent / "promtool"
PROMTOOL = str(_IN_VENV) if _IN_VENV.is_file() else shutil.which("promtool")


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    if PROMTOOL is None:
        pytest.skip("promtool is not installed: `./dev setup` puts it in .venv/bin")
    return subprocess.run([PROMTOOL, *args], cwd=GRAFANA, capture_output=True, text=True, timeout=60, check=False)


def test_the_alert_rules_pass_promtool_check_rules() -> None:
    result = promtool("check", "rules", "cronkit-alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_alert_rules_fire_on_failing_series_and_not_on_healthy_ones() -> None:
    result = promtool("test", "rules", "cronkit-alerts.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def metric_names(text: str) -> set[str]:
    return set(re.findall(r"\bcronkit_[a-z0-9_]+", text))


def dashboard() -> dict:  # type: ignore[type-arg]
    return json.loads((GRAFANA / "cronkit-dashboard.json").read_text(encoding="utf-8"))


def test_the_dashboard_and_the_rules_name_only_families_the_exporter_exposes() -> None:
    exprs = " ".join(t["expr"] for p in dashboard()["panels"] for t in p["targets"])
    rules = (GRAFANA / "cronkit-alerts.yml").read_text(encoding="utf-8")
    assert metric_names(exprs) <= set(FAMILIES), metric_names(exprs) - set(FAMILIES)
    assert metric_names(rules) <= set(FAMILIES), metric_names(rules) - set(FAMILIES)


def test_the_dashboard_shows_what_the_issue_asks_for() -> None:
    exprs = {p["title"]: " ".join(t["expr"] for t in p["targets"]) for p in dashboard()["panels"]}
    wanted = {"cronkit_job_last_run_success", "cronkit_job_last_run_timestamp_seconds", "cronkit_http_requests",
              "cronkit_job_missed_runs", "cronkit_queue_depth", "cronkit_queue_oldest_pending_age_seconds",
              "cronkit_doctor_findings"}
    assert wanted <= metric_names(" ".join(exprs.values()))
    ids = [p["id"] for p in dashboard()["panels"]]
    assert len(ids) == len(set(ids))
