"""Exported migrations, the markdown plan and the declarative-schema warning, without a database.

The markdown plan is a stable format (docs/migrations.md): the snapshot below changes only with a
documented change of the format.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cronkit.cli import main
from cronkit.declarative import declarative_gap
from cronkit.errors import ExitCode, ManifestError
from cronkit.facts import ServerFacts
from cronkit.manifest import parse_manifest
from cronkit.migration import export_migration
from cronkit.plan import Plan, Step, StepAction

FACTS = ServerFacts(postgresql="17.2", database="postgres", role="postgres", superuser=False, bypassrls=False,
                    pg_cron="1.6", pg_net="0.20.0", vault="0.3.1", pgmq=None, cron_database="postgres",
                    cron_timezone="GMT", preload="pg_cron", scheduler_databases=["postgres"])


def small_plan() -> Plan:
    plan = Plan(project="billing", environment="prod", facts=FACTS)
    plan.steps = [
        Step(StepAction.SETUP, None, "create or upgrade schema cronkit (registry, request ledger, monitoring)"),
        Step(StepAction.SECRET, None, "create secret 'service_key' in vault from SERVICE_KEY (<secret len=41 fp=1a2b3c4d>)"),
        Step(StepAction.CREATE, "invoice-sync", "schedule '*/5 * * * *'",
             changes=("calls POST {secret:supabase_url}/functions/v1/invoice-sync (timeout 5000 ms)",
                      "through cronkit.job_invoice_sync_0a1b2c3d()"),
             schedule="*/5 * * * *", target="POST {secret:supabase_url}/functions/v1/invoice-sync"),
        Step(StepAction.UPDATE, "nightly-report", "schedule '0 3 * * *' → '0 4 * * *', wrapper",
             changes=("@@ -5 +5 @@", "-  EXECUTE 'select 1';", "+  EXECUTE 'select a | b';"),
             schedule="0 4 * * *", target="SQL: select a | b"),
        Step(StepAction.UNCHANGED, "cleanup", "schedule '0 5 * * *'", schedule="0 5 * * * (paused)", target="SQL: select 3"),
        Step(StepAction.REMOVE, "old-job", "no longer in the manifest"),
    ]
    plan.foreign = [{"jobid": 7, "jobname": "hand-made", "schedule": "* * * * *", "active": True, "username": "postgres"}]
    plan.warnings = ["job 'nightly-report': at 04:00 America/Los_Angeles drifts by an hour in summer"]
    return plan


EXPECTED = """\
### cronkit plan: `billing` (`prod`)

**1 to create, 1 to update, 1 to remove, 1 unchanged, 2 setup/secret step(s)** on database `postgres` as `postgres`

| | job | action | schedule | target | what changes |
|---|---|---|---|---|---|
| `+` | `invoice-sync` | create | `*/5 * * * *` | `POST {secret:supabase_url}/functions/v1/invoice-sync` | calls POST {secret:supabase_url}/functions/v1/invoice-sync (timeout 5000 ms); through cronkit.job_invoice_sync_0a1b2c3d() |
| `~` | `nightly-report` | update | `0 4 * * *` | `SQL: select a \\| b` | schedule '0 3 * * *' → '0 4 * * *', wrapper |
| `=` | `cleanup` | unchanged | `0 5 * * * (paused)` | `SQL: select 3` |  |
| `-` | `old-job` | remove |  |  | no longer in the manifest |

<details><summary>nightly-report: wrapper change</summary>

```diff
@@ -5 +5 @@
-  EXECUTE 'select 1';
+  EXECUTE 'select a | b';
```

</details>

**Setup and secrets**

- create or upgrade schema cronkit (registry, request ledger, monitoring)
- create secret 'service_key' in vault from SERVICE_KEY (<secret len=41 fp=1a2b3c4d>)

**Foreign jobs (not created by cronkit; left alone)**

- `hand-made` `* * * * *`

**Warnings**

- job 'nightly-report': at 04:00 America/Los_Angeles drifts by an hour in summer

The exact SQL: `cronkit plan --sql`.
"""


def test_the_markdown_plan_is_the_documented_stable_format() -> None:
    assert small_plan().markdown() == EXPECTED


def test_the_markdown_plan_lists_problems_and_masks_anything_shaped_like_a_key() -> None:
    from tests.helpers import fake_jwt

    key = fake_jwt()  # built at run time: no tracked file holds a key-shaped value
    plan = small_plan()
    plan.problems = [f"secret 'k' holds {key}"]
    text = plan.markdown()
    assert "**Problems (nothing can be applied until each is fixed)**" in text
    assert key.split(".")[0] not in text and key not in text and "<secret len=" in text


def manifest_data(**env: str) -> dict:
    return {
        "project": "Billing App", "default_environment": "prod",
        "environments": {"prod": {"base_url": env.get("base_url", "{secret:supabase_url}")}},
        "jobs": [
            {"name": "invoice-sync", "schedule": "*/5 * * * *", "function": "invoice-sync",
             "headers": {"Authorization": "Bearer {secret:service_key}"}},
            {"name": "nightly", "schedule": "0 3 * * *", "sql": "select 1", "guard": "true", "active": False},
        ],
    }


def test_a_migration_is_named_like_supabase_migrations_and_holds_every_job_through_apply_statements() -> None:
    migration = export_migration(parse_manifest(manifest_data(), Path("cronkit.toml")), "prod", timestamp="20261206120000")
    assert migration.filename == "20261206120000_cronkit_billing_app.sql"
    assert re.fullmatch(r"[0-9]+_.*\.sql", migration.filename)
    text = migration.sql
    assert text.count('CREATE OR REPLACE FUNCTION "cronkit"."job_') == 2
    assert "SELECT cron.schedule('invoice-sync', '*/5 * * * *'" in text
    assert "active := false" in text and "active := true" in text
    assert text.count("INSERT INTO cronkit.managed_jobs") == 2 and "ON CONFLICT (jobname) DO UPDATE" in text
    assert "CREATE SCHEMA IF NOT EXISTS cronkit" in text
    assert "BEGIN;" not in text and "COMMIT;" not in text  # Supabase runs it in its own transaction
    jobs = text.split("-- refuse to take over", 1)[1]
    assert re.search(r"https?://", jobs) is None  # the URL is read from Vault when the job fires
    assert "url := \"_ck_secret_1\" || ''/functions/v1/invoice-sync''" in jobs  # in the wrapper's quoted source
    assert "{secret:supabase_url}" in text  # the ledger keeps the template, never a value


def test_the_seed_snippet_stores_placeholders_only() -> None:
    migration = export_migration(parse_manifest(manifest_data(), Path("cronkit.toml")), "prod", timestamp="20261206120000")
    assert "vault.create_secret('[service_key]', 'service_key'" in migration.seed
    assert "vault.create_secret('[supabase_url]', 'supabase_url'" in migration.seed
    assert "http://api.supabase.internal:8000" in migration.seed  # a hint for the URL base, in a comment
    assert all(line.startswith("--") or "'[" in line or line.startswith(" WHERE") or not line
               for line in migration.seed.splitlines())


def test_a_url_from_the_environment_is_refused_with_the_fix_and_the_config_exit_code(tmp_path: Path,
                                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    data = manifest_data(base_url="{env:SUPABASE_URL}")
    with pytest.raises(ManifestError, match=r"'invoice-sync' \(\{env:SUPABASE_URL\}\)"):
        export_migration(parse_manifest(data, Path("cronkit.toml")), "prod")
    path = tmp_path / "cronkit.toml"
    path.write_text('project = "p"\n[environments.prod]\nbase_url = "{env:SUPABASE_URL}"\n'
                    '[[jobs]]\nname = "a"\nschedule = "* * * * *"\nfunction = "f"\n', encoding="utf-8")
    code = main(["export", "migration", str(path), "--env", "prod", "--dir", str(tmp_path / "m"), "-o", "-"])
    assert code == ExitCode.CONFIG
    assert 'base_url = "{secret:supabase_url}"' in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_an_existing_migration_is_never_overwritten_without_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "cronkit.toml"
    path.write_text('project = "p"\n[[jobs]]\nname = "a"\nschedule = "* * * * *"\nsql = "select 1"\n', encoding="utf-8")
    args = ["export", "migration", str(path), "--dir", str(tmp_path / "migrations"), "--timestamp", "20261206120000"]
    assert main(args) == 0
    written = tmp_path / "migrations" / "20261206120000_cronkit_p.sql"
    written.write_text("-- edited\n", encoding="utf-8")
    assert main(args) == ExitCode.PROBLEMS
    assert written.read_text(encoding="utf-8") == "-- edited\n"
    assert main([*args, "--force"]) == 0 and "cron.schedule" in written.read_text(encoding="utf-8")
    assert (tmp_path / "seeds" / "cronkit_p.sql").exists()


def test_a_declarative_schema_directory_that_does_not_mention_a_job_is_reported(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    schemas = tmp_path / "supabase" / "schemas"
    schemas.mkdir(parents=True)
    (schemas / "010_tables.sql").write_text("create table public.invoices (id bigint);\n", encoding="utf-8")
    manifest_path = tmp_path / "ops" / "cronkit.toml"
    manifest_path.parent.mkdir()

    gap = declarative_gap(manifest_path, ["invoice-sync", "nightly"])
    assert gap is not None and gap.undeclared == ("invoice-sync", "nightly") and "cron.unschedule" in gap.message()

    (schemas / "020_cron.sql").write_text("-- cronkit job: invoice-sync\n-- cronkit job: nightly\n", encoding="utf-8")
    assert declarative_gap(manifest_path, ["invoice-sync", "nightly"]) is None


def test_no_declarative_schema_directory_below_the_repository_root_means_no_warning(tmp_path: Path) -> None:
    (tmp_path / "supabase" / "schemas").mkdir(parents=True)  # above the repository: not this project's
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    assert declarative_gap(repo / "cronkit.toml", ["a"]) is None
