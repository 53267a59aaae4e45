"""Packaging: the core wheel holds no dev tools, the sandbox wheel carries them and the demo's examples.

An installed, non-editable pair (core + ``[sandbox]`` extra) runs the demo from its own files:
no source tree, no editable finder. The wheels are built from a copy of the sources so a stale
``build/`` or ``*.egg-info`` in the checkout can neither leak into them nor be left behind.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import TEST_POSTGRES

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
SANDBOX_MODULES = ("cluster", "daemons", "demo", "demo_functions", "edge", "manager", "networker")
# Anything of the sandbox, by the names its files have or had (cronkit/sandbox/, cronkit/demo.py).
DEV_TOOL = re.compile(r"sandbox|(^|/)edge|networker|standin|demo|daemons|bootstrap\.sql|\.control$|examples/")
PIP = (sys.executable, "-m", "pip", "--disable-pip-version-check")


def _run(*args: str | Path, timeout: float = 300, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, **kwargs)  # type: ignore[call-overload]


def _ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, f"{' '.join(result.args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result


def _example_files() -> list[str]:
    """The files the demo applies, relative to examples/."""
    files = ["maintenance.toml"]
    for system in sorted(d for d in EXAMPLES.iterdir() if (d / "cronkit.toml").is_file()):
        files += [f"{system.name}/{name}" for name in ("cronkit.toml", "schema.sql", "seed.sql")]
    return files


@dataclass(frozen=True)
class Wheels:
    core: Path
    sandbox: Path

    @staticmethod
    def names(wheel: Path) -> list[str]:
        with zipfile.ZipFile(wheel) as archive:
            return [n for n in archive.namelist() if ".dist-info/" not in n]


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Wheels:
    tmp = tmp_path_factory.mktemp("wheels")
    src, out = tmp / "src", tmp / "dist"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "__marimo__")
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    # symlinks=True keeps the sandbox package's links to examples/ and runbooks/ relative, as in git.
    for name in ("cronkit", "sandbox", "examples", "runbooks"):
        shutil.copytree(ROOT / name, src / name, symlinks=True, ignore=ignore)
    for project in (src, src / "sandbox"):
        # No build isolation: the lock's setuptools is in the venv and the package index may be offline.
        _ok(_run(*PIP, "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", out, project))
    return Wheels(core=next(out.glob("cronkit-*.whl")), sandbox=next(out.glob("cronkit_sandbox-*.whl")))


def test_the_core_wheel_holds_no_sandbox_edge_server_delivery_worker_standin_or_demo(wheels: Wheels) -> None:
    names = Wheels.names(wheels.core)
    assert "cronkit/cli/__init__.py" in names
    assert [n for n in names if DEV_TOOL.search(n)] == []


def test_the_core_wheel_carries_every_sql_file_of_the_package(wheels: Wheels) -> None:
    names = set(Wheels.names(wheels.core))
    sql = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "cronkit" / "sql").rglob("*.sql"))
    assert "cronkit/sql/schema.sql" in sql
    assert [p for p in sql if p not in names] == []


def test_the_core_wheel_offers_the_sandbox_as_an_extra(wheels: Wheels) -> None:
    with zipfile.ZipFile(wheels.core) as archive:
        metadata = archive.read("cronkit-0.1.0.dist-info/METADATA").decode()
    assert "Provides-Extra: sandbox" in metadata
    assert "Requires-Dist: cronkit-sandbox==0.1.0; extra == \"sandbox\"" in metadata


def test_the_sandbox_wheel_carries_the_dev_tools_the_demo_and_copies_of_its_examples(wheels: Wheels) -> None:
    names = set(Wheels.names(wheels.sandbox))
    expected = {f"cronkit_sandbox/{m}.py" for m in SANDBOX_MODULES} | {
        "cronkit_sandbox/bootstrap.sql",
        "cronkit_sandbox/standins/pg_net.control",
        "cronkit_sandbox/standins/pg_net--0.20.0.sql",
        "cronkit_sandbox/standins/supabase_vault.control",
        "cronkit_sandbox/standins/supabase_vault--0.3.1.sql",
        "cronkit_sandbox/runbooks/monitor.py",
    } | {f"cronkit_sandbox/examples/{f}" for f in _example_files()}
    assert sorted(expected - names) == []
    assert not [n for n in names if n.startswith("cronkit/")], "the sandbox wheel must not carry the core package"
    with zipfile.ZipFile(wheels.sandbox) as archive:
        for name in _example_files():
            assert archive.read(f"cronkit_sandbox/examples/{name}") == (EXAMPLES / name).read_bytes(), name


def _clean_env(**extra: str) -> dict[str, str]:
    # The installed package alone decides: nothing from the checkout's settings or a developer's sandbox.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CRONKIT_", "PG")) and k not in ("DATABASE_URL", "PYTHONPATH")}
    return {**env, **extra}


@dataclass(frozen=True)
class Installed:
    root: Path
    python: Path
    cronkit: Path
    without_sandbox: subprocess.CompletedProcess[str]

    def env(self, **extra: str) -> dict[str, str]:
        return _clean_env(**extra)


@pytest.fixture(scope="module")
def installed(wheels: Wheels, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """A fresh venv holding both wheels, non-editable; cronkit's dependencies come from this venv."""
    root = tmp_path_factory.mktemp("installed")
    venv = root / "venv"
    _ok(_run(sys.executable, "-m", "venv", "--without-pip", venv))
    python = venv / "bin" / "python"
    site = Path(_ok(_run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")).stdout.strip())
    # The dependencies (psycopg, polars, marimo, ...) as a plain path after the venv's own
    # site-packages: its .pth files, and so this checkout's editable finders, are not read.
    (site / "zz_cronkit_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    def install(wheel: Path) -> None:
        _ok(_run(*PIP, "--python", python, "install", "-q", "--no-deps", "--no-index", "--ignore-installed", wheel))

    install(wheels.core)
    cronkit = venv / "bin" / "cronkit"
    without = _run(cronkit, "sandbox", "status", env=_clean_env(), cwd=root)
    install(wheels.sandbox)
    return Installed(root, python, cronkit, without)


def test_without_the_extra_the_sandbox_commands_name_the_install(installed: Installed) -> None:
    result = installed.without_sandbox
    assert result.returncode == 78, result.stderr
    assert "pip install 'cronkit[sandbox]'" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_installed_packages_are_the_wheels_not_the_checkout(installed: Installed) -> None:
    code = "import cronkit, cronkit_sandbox; print(cronkit.__file__); print(cronkit_sandbox.__file__)"
    result = _ok(_run(installed.python, "-c", code, env=installed.env(), cwd=installed.root))
    for line in result.stdout.split():
        assert Path(line).is_relative_to(installed.root / "venv"), line


def test_the_installed_demo_has_help_and_finds_its_examples(installed: Installed) -> None:
    assert "--wait" in _ok(_run(installed.cronkit, "demo", "--help", env=installed.env(), cwd=installed.root)).stdout
    code = ("import json; from cronkit_sandbox import demo; "
            "print(json.dumps({'dir': str(demo.EXAMPLES_DIR), 'names': [e.name for e in demo.examples()], "
            "'projects': [e.manifest().project for e in demo.examples()], "
            "'maintenance': demo.MAINTENANCE_MANIFEST.is_file(), 'runbook': demo.MONITOR_RUNBOOK.is_file()}))")
    found = json.loads(_ok(_run(installed.python, "-c", code, env=installed.env(), cwd=installed.root)).stdout)
    assert Path(found["dir"]).is_relative_to(installed.root / "venv")
    assert not Path(found["dir"]).is_symlink()
    assert found["names"] == sorted(d.name for d in EXAMPLES.iterdir() if (d / "cronkit.toml").is_file())
    assert len(found["names"]) == 5
    assert found["maintenance"] and found["runbook"]


@pytest.fixture()
def installed_sandbox(installed: Installed, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of a sandbox of its own; stopped and removed afterwards, whatever happened."""
    # The session's engine, and its cached root when one was given (nothing else of the checkout's settings).
    engine = {"CRONKIT_SANDBOX_POSTGRES": str(TEST_POSTGRES)} if TEST_POSTGRES else {}
    cache = {k: os.environ[k] for k in ("CRONKIT_CACHE_DIR",) if k in os.environ}
    env = installed.env(CRONKIT_SANDBOX_DIR=str(tmp_path / "sandbox"), **engine, **cache)
    try:
        yield env
    finally:
        _run(installed.cronkit, "sandbox", "down", "--reset", env=env, cwd=installed.root, timeout=120)


@pytest.mark.slow
def test_the_installed_package_runs_the_demo_through_the_sandbox_extra(
    installed: Installed, installed_sandbox: dict[str, str], tmp_path: Path
) -> None:
    result = _run(installed.cronkit, "demo", "--wait", "90", "--json", env=installed_sandbox, cwd=tmp_path, timeout=400)
    assert result.returncode == 0, f"demo exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    report = json.loads(result.stdout)
    assert report["complete"] is True
    projects = {job["project"] for job in report["jobs"]}
    from cronkit.manifest import load_manifest

    assert projects == {load_manifest(EXAMPLES / name / "cronkit.toml").project
                        for name in ("auto-sync", "bubble-sync", "instagram-sync", "scheduled-workflows", "tasty-mangoes")}
    assert all(job["runs"] > 0 and job["pending"] == 0 for job in report["jobs"])
    assert (tmp_path / "reports" / "demo.md").is_file() and (tmp_path / "reports" / "monitor.html").is_file()
    # The report names the engine and its versions, and every schedule that is not the guide's, with why.
    assert report["sandbox"]["engine"]["postgres"] == TEST_POSTGRES
    assert report["sandbox"]["versions"]["postgresql"].startswith(f"{TEST_POSTGRES}.")
    markdown = (tmp_path / "reports" / "demo.md").read_text()
    assert f"PostgreSQL {report['sandbox']['versions']['postgresql']}, pg_cron {report['sandbox']['versions']['pg_cron']}" in markdown
    instagram = next(job for job in report["jobs"] if job["jobname"] == "process-instagram-imports")
    changed = {o["job"]: o for o in report["overrides"]}
    if report["sandbox"]["versions"]["pg_cron"].startswith("1.6"):  # the guide's own 10 seconds, repeating
        assert instagram["schedule"] == "10 seconds" and instagram["runs"] >= 3
        assert "process-instagram-imports" not in changed
    else:
        assert instagram["schedule"] == "* * * * *"
        assert "needs pg_cron 1.5 or later" in changed["process-instagram-imports"]["reason"]
    assert changed["generate-t5-invoices"]["written"] == "0 1 * * *"
    assert "`0 1 * * *`" in markdown and changed["generate-t5-invoices"]["reason"] in markdown
    # The sandbox's daemons run on the installed interpreter, so from the installed package.
    status = json.loads(_ok(_run(installed.cronkit, "sandbox", "status", "--json", env=installed_sandbox)).stdout)
    for daemon in ("networker", "edge"):
        argv = Path(f"/proc/{status[daemon]['pid']}/cmdline").read_bytes().split(b"\0")
        assert argv[0].decode() == str(installed.python), argv
