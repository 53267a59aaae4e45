"""Choosing and preparing a sandbox engine: the newest this machine can have, or the one asked for.

Every way a PostgreSQL 17 root cannot be had ends in one message naming the fix, before anything
is built: not root, no debootstrap, Debian's archive unreachable, a root half-built by a killed
run, a directory that only looks like a root. (Building one for real: tests/integration.)
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cronkit.errors import ExitCode, SandboxError, UsageError
from cronkit_sandbox import engines
from cronkit_sandbox.engines import Engine, EngineKind


@pytest.fixture
def cache(tmp_path: Path) -> dict[str, str]:
    return {"CRONKIT_CACHE_DIR": str(tmp_path / "cache")}


def root_engine(environ: dict[str, str]) -> Engine:
    return Engine(EngineKind.ROOT, 17, engines.root_path(environ))


def refusal(engine: Engine, environ: dict[str, str]) -> SandboxError:
    with pytest.raises(SandboxError) as caught:
        engines.prepare(engine, environ, lambda _m: None)
    return caught.value


@pytest.mark.parametrize(("given", "env", "major"), [
    (None, "", None), (17, "", 17), (None, "15", 15), (15, "17", 15), (None, " 17 ", 17),
])
def test_postgres_flag_wins_over_the_environment(given: int | None, env: str, major: int | None) -> None:
    assert engines.requested_major({"CRONKIT_SANDBOX_POSTGRES": env}, given) == major


def test_an_unsupported_major_is_a_usage_error_naming_the_choices() -> None:
    with pytest.raises(UsageError) as caught:
        engines.requested_major({"CRONKIT_SANDBOX_POSTGRES": "16"})
    assert caught.value.exit_code == ExitCode.USAGE
    assert "not '16'" in str(caught.value) and "--postgres 17" in str(caught.value)


def test_the_cache_is_outside_the_checkout_and_can_be_moved(tmp_path: Path) -> None:
    assert engines.cache_dir({"CRONKIT_CACHE_DIR": str(tmp_path)}) == tmp_path
    assert engines.cache_dir({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "cronkit"
    assert engines.cache_dir({"HOME": str(tmp_path)}) == tmp_path / ".cache" / "cronkit"
    assert engines.root_path({"HOME": str(tmp_path)}).name == "trixie-pg17"


def test_default_is_the_newest_engine_the_machine_can_have(monkeypatch: pytest.MonkeyPatch,
                                                           cache: dict[str, str]) -> None:
    monkeypatch.setattr(engines, "host_has", lambda major: major == 15)
    monkeypatch.setattr(engines.os, "geteuid", lambda: 0)
    monkeypatch.setattr(engines, "debootstrap", lambda: "/usr/sbin/debootstrap")
    assert engines.choose(cache, None) == root_engine(cache)
    monkeypatch.setattr(engines, "debootstrap", lambda: None)  # no way to build the root: the host's 15
    assert engines.choose(cache, None) == Engine(EngineKind.HOST, 15)
    monkeypatch.setattr(engines.os, "geteuid", lambda: 1000)  # chroot needs root
    monkeypatch.setattr(engines, "debootstrap", lambda: "/usr/sbin/debootstrap")
    assert engines.choose(cache, None) == Engine(EngineKind.HOST, 15)
    monkeypatch.setattr(engines, "host_has", lambda major: True)  # trixie: the host's own 17
    assert engines.choose(cache, None) == Engine(EngineKind.HOST, 17)


def test_no_engine_at_all_names_the_packages(monkeypatch: pytest.MonkeyPatch, cache: dict[str, str]) -> None:
    monkeypatch.setattr(engines, "host_has", lambda major: False)
    monkeypatch.setattr(engines.os, "geteuid", lambda: 1000)
    with pytest.raises(SandboxError, match="No PostgreSQL with pg_cron") as caught:
        engines.choose(cache, None)
    assert "apt-get install postgresql-15 postgresql-15-cron debootstrap" in str(caught.value)
    with pytest.raises(SandboxError, match="PostgreSQL 15 with pg_cron is not installed"):
        engines.choose(cache, 15)


def test_the_root_engine_needs_root(monkeypatch: pytest.MonkeyPatch, cache: dict[str, str]) -> None:
    monkeypatch.setattr(engines.os, "geteuid", lambda: 1000)
    error = refusal(root_engine(cache), cache)
    assert "needs root" in error.message and "--postgres 15" in error.remedy


def test_no_debootstrap_names_the_package(monkeypatch: pytest.MonkeyPatch, cache: dict[str, str]) -> None:
    monkeypatch.setattr(engines.os, "geteuid", lambda: 0)
    monkeypatch.setattr(engines, "debootstrap", lambda: None)
    error = refusal(root_engine(cache), cache)
    assert "needs debootstrap" in error.message and "apt-get install debootstrap" in error.remedy


def test_an_unreachable_archive_is_named_before_anything_is_built(monkeypatch: pytest.MonkeyPatch,
                                                                  cache: dict[str, str]) -> None:
    monkeypatch.setattr(engines.os, "geteuid", lambda: 0)
    monkeypatch.setattr(engines, "debootstrap", lambda: "/usr/sbin/debootstrap")
    environ = {**cache, "CRONKIT_DEBIAN_MIRROR": "http://127.0.0.1:1/debian"}  # nothing listens on port 1
    error = refusal(root_engine(cache), environ)
    assert "Debian's archive is unreachable" in error.message and "CRONKIT_DEBIAN_MIRROR" in error.remedy
    assert not engines.root_path(cache).parent.exists()


def test_a_root_half_built_by_a_killed_run_is_named_with_the_fix(monkeypatch: pytest.MonkeyPatch,
                                                                 cache: dict[str, str]) -> None:
    monkeypatch.setattr(engines.os, "geteuid", lambda: 0)
    monkeypatch.setattr(engines, "debootstrap", lambda: "/usr/sbin/debootstrap")
    root = engines.root_path(cache)
    dead = 2**22 + 7  # above Linux's default pid_max: no such process
    leftover = root.parent / f".{root.name}.building-{dead}"
    leftover.mkdir(parents=True)
    error = refusal(root_engine(cache), cache)
    assert "half-built by an interrupted run" in error.message and f"rm -rf {leftover}" in error.remedy
    leftover.rename(root.parent / f".{root.name}.building-{os.getpid()}")  # a build still running
    error = refusal(root_engine(cache), cache)
    assert f"process {os.getpid()}" in error.message and "Wait" in error.remedy


def test_a_directory_without_the_completion_marker_is_not_trusted(monkeypatch: pytest.MonkeyPatch,
                                                                   cache: dict[str, str]) -> None:
    monkeypatch.setattr(engines.os, "geteuid", lambda: 0)
    root = engines.root_path(cache)
    (root / "etc").mkdir(parents=True)
    error = refusal(root_engine(cache), cache)
    assert "not a complete trixie root" in error.message and f"rm -rf {root}" in error.remedy
    (root / engines.COMPLETE_MARKER).write_text("made by cronkit\n")
    engines.prepare(root_engine(cache), cache, lambda _m: None)  # complete: nothing to do


def test_the_root_user_comes_from_the_roots_own_passwd(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\npostgres:x:100:102::/var/lib/postgresql:/bin/sh\n")
    assert engines.root_user(tmp_path) == (100, 102, "/var/lib/postgresql")
    (tmp_path / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    with pytest.raises(SandboxError, match="has no 'postgres' user"):
        engines.root_user(tmp_path)


def test_paths_map_between_the_server_and_this_process(tmp_path: Path) -> None:
    engine = Engine(EngineKind.ROOT, 17, tmp_path)
    assert engine.on_host(Path("/usr/lib/postgresql/17/bin")) == tmp_path / "usr/lib/postgresql/17/bin"
    assert Engine(EngineKind.HOST, 15).on_host(Path("/usr/lib")) == Path("/usr/lib")


def test_a_bad_engine_in_the_environment_exits_64_before_anything_starts(monkeypatch: pytest.MonkeyPatch,
                                                                         tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from cronkit.cli import main

    monkeypatch.setenv("CRONKIT_SANDBOX_POSTGRES", "16")
    assert main(["sandbox", "--state-dir", str(tmp_path / "state"), "up"]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert "not '16'" in err and "fix:" in err and "Traceback" not in err
    assert not (tmp_path / "state").exists()
