"""The sandbox's Vault behaves like Supabase Vault 0.3 for the app role `postgres`.

Everything here runs as the app role (``db``) except faults only a superuser can create (``su``),
so the same tests hold against a real Supabase database (``CRONKIT_TEST_DSN``). The one test of
the stand-in's own key storage needs the sandbox.

Reference: ../shared/reference/pg_cron_pg_net_vault.md §3.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from cronkit import db as cdb

Conn = psycopg.Connection[dict[str, Any]]


@pytest.fixture
def prefix(db: Conn) -> Iterator[str]:
    """A unique secret-name prefix; secrets named with it are deleted afterwards (the app role may)."""
    prefix = f"t_vault_{uuid.uuid4().hex[:8]}_"
    yield prefix
    db.execute("delete from vault.secrets where name like %s", (prefix + "%",))


def _create(db: Conn, value: str | None, name: str, description: str = "") -> str:
    row = db.execute("select vault.create_secret(%s, %s, %s) as id", (value, name, description)).fetchone()
    assert row is not None
    return str(row["id"])


def _decrypted(db: Conn, name: str) -> dict[str, Any] | None:
    return db.execute(
        "select id::text, name, description, decrypted_secret, created_at, updated_at"
        " from vault.decrypted_secrets where name = %s",
        (name,),
    ).fetchone()


def test_the_app_role_creates_and_reads_a_secret(db: Conn, prefix: str) -> None:
    secret_id = _create(db, "https://abc.supabase.co", prefix + "project_url", "where the functions are")
    row = _decrypted(db, prefix + "project_url")
    assert row is not None
    assert (row["id"], row["decrypted_secret"], row["description"]) == (
        secret_id,
        "https://abc.supabase.co",
        "where the functions are",
    )


def test_update_secret_changes_what_is_given_and_keeps_the_rest(db: Conn, prefix: str) -> None:
    secret_id = _create(db, "old-value", prefix + "key", "first")
    before = _decrypted(db, prefix + "key")
    db.execute("select vault.update_secret(%s::uuid, new_secret := %s)", (secret_id, "new-value"))
    after = _decrypted(db, prefix + "key")
    assert before is not None and after is not None
    assert (after["decrypted_secret"], after["description"]) == ("new-value", "first")
    assert after["updated_at"] > before["updated_at"]

    db.execute(
        "select vault.update_secret(%s::uuid, new_name := %s, new_description := 'second')",
        (secret_id, prefix + "renamed"),
    )
    renamed = _decrypted(db, prefix + "renamed")
    assert renamed is not None
    assert (renamed["decrypted_secret"], renamed["description"]) == ("new-value", "second")


def test_an_empty_secret_is_allowed_and_a_null_one_is_refused(db: Conn, prefix: str) -> None:
    _create(db, "", prefix + "empty")
    assert (_decrypted(db, prefix + "empty") or {}).get("decrypted_secret") == ""
    with pytest.raises(psycopg.errors.NotNullViolation) as caught:
        _create(db, None, prefix + "null")
    assert caught.value.diag.column_name == "secret"


def test_a_second_secret_with_the_same_name_is_a_unique_violation(db: Conn, prefix: str) -> None:
    _create(db, "one", prefix + "dup")
    with pytest.raises(psycopg.errors.UniqueViolation) as caught:
        _create(db, "two", prefix + "dup")
    assert caught.value.diag.constraint_name == "secrets_name_idx"


@pytest.mark.parametrize(
    "statement",
    [
        "insert into vault.secrets (name, secret) values (%(name)s, 'c2VjcmV0')",
        "update vault.secrets set description = 'changed' where name = %(name)s",
    ],
)
def test_the_app_role_cannot_write_vault_secrets_directly(db: Conn, prefix: str, statement: str) -> None:
    _create(db, "value", prefix + "direct")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        db.execute(statement, {"name": prefix + "direct"})


def test_the_stored_secret_is_ciphertext_that_never_contains_the_plaintext(db: Conn, prefix: str) -> None:
    plaintext = f"sb_secret_{uuid.uuid4().hex}"
    _create(db, plaintext, prefix + "a")
    _create(db, plaintext, prefix + "b")
    rows = db.execute(
        "select secret, decrypted_secret from vault.decrypted_secrets where name in (%s, %s)",
        (prefix + "a", prefix + "b"),
    ).fetchall()
    assert [row["decrypted_secret"] for row in rows] == [plaintext, plaintext]
    for row in rows:
        assert plaintext not in row["secret"]
        assert plaintext.encode() not in base64.b64decode(row["secret"])
    assert rows[0]["secret"] != rows[1]["secret"]


def test_a_ciphertext_copied_to_another_row_does_not_decrypt(db: Conn, su: Conn, prefix: str) -> None:
    _create(db, "value-of-a", prefix + "a")
    _create(db, "value-of-b", prefix + "b")
    su.execute(
        "update vault.secrets t set secret = s.secret from vault.secrets s where t.name = %s and s.name = %s",
        (prefix + "b", prefix + "a"),
    )
    assert (_decrypted(db, prefix + "a") or {}).get("decrypted_secret") == "value-of-a"
    with pytest.raises(psycopg.errors.DataException, match="invalid ciphertext"):
        _decrypted(db, prefix + "b")


def test_service_role_reads_secrets_and_anon_cannot(sandbox: Any, prefix: str, db: Conn) -> None:
    _create(db, "shared", prefix + "roles")
    with cdb.connect(sandbox.database_url) as conn:
        conn.execute("set local role service_role")
        row = conn.execute(
            "select decrypted_secret from vault.decrypted_secrets where name = %s", (prefix + "roles",)
        ).fetchone()
        assert row == {"decrypted_secret": "shared"}
        conn.rollback()
        conn.execute("set local role anon")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select * from vault.decrypted_secrets")
        conn.rollback()


def test_the_root_key_is_out_of_the_app_roles_reach(sandbox_only: Any, db: Conn) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        db.execute("select * from cronkit_vault_private.root_key")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        db.execute("select vault._crypto_aead_det_encrypt('x', 'y', 0)")
