"""``cronkit exporter`` against the five seed examples in a private lab, read as a read-only role.

One lab for the module: the examples applied as ``cronkit demo`` does (with cronkit's maintenance
jobs and a first queue snapshot), every job run once and answered. The exporter then reads it as
``watcher``, a role with only the README's read grants ("Least privilege"), and every scrape is
parsed with prometheus_client's own parser.
"""

from __future__ import annotations

import gc
import json
import signal
import socket
import subprocess
import tracemalloc
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from cronkit.cli import main
from cronkit.exporter import FAMILIES, Exporter, Target, scrape_text, serving
from cronkit.schedules import PgCronVersion
from tests.helpers import wait_for
from tests.jobs_support import cli_command, cli_env
from tests.labs import Lab, apply_demo_examples, demo_projects, lab_directory, start_lab, stop_labs, wait_demo_examples_answered

pytestmark = pytest.mark.slow

PASSWORD = "exp-" + uuid.uuid4().hex[:12]
DOWN = f"postgresql://watcher:{PASSWORD}@127.0.0.1:1/nowhere"  # nothing listens on port 1
#: what README's "Least privilege" grants a read-only monitoring role
GRANTS = """
GRANT USAGE ON SCHEMA cron TO {role};
GRANT SELECT ON cron.job, cron.job_run_details TO {role};
GRANT USAGE ON SCHEMA cronkit, net TO {role};
GRANT SELECT ON ALL TABLES IN SCHEMA cronkit TO {role};
GRANT SELECT ON net._http_response TO {role};
"""

Families = dict[str, list[tuple[dict[str, str], float]]]


@pytest.fixture(scope="module")
def lab(sandbox_only: Any, pg_cron_version: PgCronVersion) -> Iterator[Lab]:
    with lab_directory("cronkit-exporter-") as base:
        labs: list[Lab] = []
        try:
            labs.append(start_lab(base, "examples"))
            since = apply_demo_examples(labs[0], pg_cron_version)
            wait_demo_examples_answered(labs[0], since)
            yield labs[0]
        finally:
            stop_labs(labs)


@pytest.fixture(scope="module")
def watcher(lab: Lab) -> str:
    """A DSN of a role that may only read (README's grants; it bypasses pg_cron's row-level security
    on cron.job, as a fleet monitor must to see jobs it does not own)."""
    role = "exporter_watcher"
    with lab.su() as su:
        su.execute(f"CREATE ROLE {role} LOGIN BYPASSRLS PASSWORD '{PASSWORD}'")  # type: ignore[arg-type]  # test constants
        for statement in GRANTS.format(role=role).strip().splitlines():
            su.execute(statement)  # type: ignore[arg-type]
    return f"postgresql://{role}:{PASSWORD}@{lab.env.database_url.rsplit('@', 1)[1]}"


def parse(text: str) -> Families:
    return {f.name: [(s.labels, s.value) for s in f.samples] for f in text_string_to_metric_families(text)}


def rollups_current(lab: Lab) -> None:
    """Wait until the maintenance jobs folded the examples' runs into the rollups and harvested the answers."""
    def done() -> bool:
        rows = lab.sql("SELECT rollups_refreshed_at IS NOT NULL AND harvested_at IS NOT NULL AS ok "
                       "FROM cronkit.monitor_state")
        return bool(rows and rows[0]["ok"])

    wait_for(done, timeout=150, interval=2, message="cronkit's rollup and harvest jobs to run once")


@pytest.fixture(scope="module")
def scraped(lab: Lab, watcher: str) -> tuple[str, Families]:
    rollups_current(lab)
    exporter = Exporter([Target(watcher)])
    try:
        text = scrape_text(exporter)
    finally:
        exporter.close()
    return text, parse(text)


def test_a_scrape_of_the_five_examples_has_every_family_and_parses(scraped: tuple[str, Families]) -> None:
    _, found = scraped
    assert set(found) == set(FAMILIES)
    assert [v for _, v in found["cronkit_up"]] == [1.0]
    failed = {labels["read"] for labels, v in found["cronkit_read_success"] if v == 0}
    assert failed == set(), f"reads a read-only role could not do: {failed}"


def test_every_example_job_ran_and_its_calls_answered_2xx(scraped: tuple[str, Families], lab: Lab) -> None:
    _, found = scraped
    projects = set(demo_projects())
    ran = {labels["jobname"] for labels, v in found["cronkit_job_runs"] if v > 0 and labels["project"] in projects}
    example_jobs = {row["jobname"] for row in lab.sql(  # not the maintenance jobs: queue snapshots run every 5 min
        "SELECT jobname FROM cronkit.managed_jobs WHERE project = ANY(%s) AND jobname NOT LIKE 'cronkit-%%'",
        (list(projects),))}
    assert example_jobs and example_jobs <= ran
    started = {labels["jobname"] for labels, _ in found["cronkit_job_last_run_timestamp_seconds"]}
    assert example_jobs <= started
    answered = {labels["jobname"] for labels, v in found["cronkit_http_requests"] if labels["outcome"] == "2xx" and v > 0}
    assert answered, "the examples' HTTP jobs got 2xx answers"
    assert {labels["project"] for labels, _ in found["cronkit_queue_depth"]} & projects
    assert found["cronkit_doctor_run_timestamp_seconds"], "the first scrape waits for the doctor"
    assert all(labels["severity"] in ("critical", "warning", "info") for labels, _ in found["cronkit_doctor_findings"])


def test_no_password_or_user_appears_in_a_scrape(scraped: tuple[str, Families]) -> None:
    text, _ = scraped
    assert PASSWORD not in text and "exporter_watcher" not in text


def test_a_database_that_is_down_is_up_0_and_the_others_are_still_served(lab: Lab, watcher: str) -> None:
    exporter = Exporter([Target(DOWN), Target(watcher)])
    try:
        text = scrape_text(exporter)
    finally:
        exporter.close()
    found = parse(text)
    up = {labels["database"]: v for labels, v in found["cronkit_up"]}
    assert up.pop("127.0.0.1:1/nowhere") == 0
    assert list(up.values()) == [1.0]
    assert found["cronkit_job_runs"]
    assert PASSWORD not in text


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_it_serves_metrics_over_http(lab: Lab, watcher: str) -> None:
    exporter = Exporter([Target(watcher)])
    with serving(exporter, "127.0.0.1", 0) as (host, port):
        with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=30) as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain")
            found = parse(response.read().decode())
    assert set(found) == set(FAMILIES)
    assert [v for _, v in found["cronkit_up"]] == [1.0]


def test_the_command_prints_one_scrape_and_its_json_twin(lab: Lab, watcher: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["exporter", "--once", "--dsn", watcher]) == 0
    text = capsys.readouterr().out
    assert set(parse(text)) == set(FAMILIES)
    assert main(["exporter", "--once", "--json", "--dsn", watcher, "--dsn", DOWN]) == 1  # one database down
    as_json = json.loads(capsys.readouterr().out)
    assert [f["name"] for f in as_json["families"]] == list(FAMILIES)
    up = {s["labels"]["database"]: s["value"] for f in as_json["families"] if f["name"] == "cronkit_up" for s in f["samples"]}
    assert up["127.0.0.1:1/nowhere"] == 0 and sorted(up.values()) == [0, 1]
    assert PASSWORD not in json.dumps(as_json)


def test_the_server_stops_cleanly_on_ctrl_c(lab: Lab, watcher: str, tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(cli_command("exporter", "--listen", f"127.0.0.1:{port}", "--dsn", watcher),
                               cwd=tmp_path, env=cli_env(None), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               stdin=subprocess.DEVNULL, text=True)
    try:
        def serving_metrics() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as response:
                    return response.status == 200
            except OSError:
                return False

        wait_for(serving_metrics, timeout=60, message="the exporter to serve /metrics")
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "Traceback" not in err and "stopped" in err
    assert PASSWORD not in out + err


def test_memory_stays_flat_over_100_scrapes(lab: Lab, watcher: str) -> None:
    exporter = Exporter([Target(watcher)])
    try:
        for _ in range(5):  # warm up: imports, the doctor's first run, prepared caches
            scrape_text(exporter)
        gc.collect()
        tracemalloc.start()
        try:
            before, _ = tracemalloc.get_traced_memory()
            for _ in range(100):
                exporter.collect()
            gc.collect()
            after, _ = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    finally:
        exporter.close()
    assert after - before < 1_000_000, f"{(after - before) / 1000:.0f} kB more after 100 scrapes"
