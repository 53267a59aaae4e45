-- cronkit's local stand-in for Supabase Vault 0.3.1 (supabase/vault, sql/supabase_vault--0.3.0.sql;
-- 0.3.1 has no SQL changes).
--
-- Same table, view, functions, signatures and privileges as the real extension, plus the grants
-- Supabase's after-create script gives `postgres` and `service_role`. The real extension encrypts
-- in C (libsodium's deterministic XChaCha20 AEAD) under a root key read from a file at server
-- start; this one encrypts with pgcrypto under a random root key generated at CREATE EXTENSION
-- time and kept in a schema only the extension owner can read.
--
-- Deliberate differences:
--   * ciphertexts are OpenPGP messages (pgp_sym_encrypt_bytea, AES-256 with an integrity check)
--     under a key derived from the root key, the row id (the AEAD's additional data) and its
--     nonce: a ciphertext copied to another row does not decrypt, as with the real AEAD. They are
--     randomised, not deterministic, so the encrypt/decrypt functions are VOLATILE/STABLE where
--     the real ones say IMMUTABLE;
--   * create_secret never writes the plaintext to the table (the real one INSERTs it, then
--     UPDATEs it to the ciphertext in the same transaction);
--   * the root key lives in the database (schema cronkit_vault_private), but as an extension
--     member its row is not dumped: restoring a dump into another cluster fails with
--     `invalid ciphertext`, as a real restore with another root key does (supabase/vault#29).
-- Reference: ../../../../shared/reference/pg_cron_pg_net_vault.md §3.

\echo Use "CREATE EXTENSION supabase_vault" to load this file. \quit

-- Functions below run with `search_path = ''` and call pgcrypto by its schema; PostgreSQL 15 has
-- no @extschema:pgcrypto@, so the schema is fixed to Supabase's.
do $$
begin
  if not exists (
    select from pg_catalog.pg_extension e
    join pg_catalog.pg_namespace n on n.oid = e.extnamespace
    where e.extname = 'pgcrypto' and n.nspname = 'extensions'
  ) then
    raise exception 'cronkit''s supabase_vault stand-in needs pgcrypto in schema "extensions"'
      using hint = 'CREATE SCHEMA IF NOT EXISTS extensions; CREATE EXTENSION pgcrypto WITH SCHEMA extensions;';
  end if;
end
$$;

-- ---------------------------------------------------------------------------------------------
-- The root key. No grants on this schema: only the owner (the superuser who ran CREATE
-- EXTENSION, supabase_admin in the sandbox) and other superusers can read it.

create schema cronkit_vault_private;

create table cronkit_vault_private.root_key (
  only_row bool primary key default true check (only_row),
  root_key bytea not null
);

insert into cronkit_vault_private.root_key (root_key) values (extensions.gen_random_bytes(32));

-- The password for one message: root key → subkey for (key_id, context), as pgsodium's
-- crypto_kdf does, → per-message key bound to the additional data (the row id) and the nonce.
-- The length prefix keeps (additional, nonce) pairs from colliding.
create function cronkit_vault_private.message_key(additional bytea, key_id bigint, context bytea, nonce bytea)
returns text
language sql
stable
set search_path = ''
as $$
  select pg_catalog.encode(
    extensions.hmac(
      pg_catalog.int4send(coalesce(pg_catalog.length(additional), 0)) || coalesce(additional, '') || coalesce(nonce, ''),
      extensions.hmac(pg_catalog.int8send(key_id) || context, k.root_key, 'sha256'),
      'sha256'),
    'hex')
  from cronkit_vault_private.root_key k;
$$;

-- The real C functions' argument checks and messages (ERRCODE_DATA_EXCEPTION).
create function cronkit_vault_private.check_arguments(function_name text, message bytea, key_id bigint, context bytea, nonce bytea)
returns void
language plpgsql
immutable
set search_path = ''
as $$
begin
  if message is null then
    raise exception '%: message cannot be NULL', function_name using errcode = 'data_exception';
  elsif key_id is null then
    raise exception '%: key id cannot be NULL', function_name using errcode = 'data_exception';
  elsif context is null then
    raise exception '%: key context cannot be NULL', function_name using errcode = 'data_exception';
  elsif pg_catalog.length(nonce) <> 16 then
    raise exception '%: invalid nonce', function_name using errcode = 'data_exception';
  end if;
end
$$;

revoke all on function
  cronkit_vault_private.message_key,
  cronkit_vault_private.check_arguments
from public;

-- ---------------------------------------------------------------------------------------------
-- The crypto functions, with the real signatures (the view and Supabase's grants name them).
-- SECURITY DEFINER: they read the root key on behalf of whoever may EXECUTE them.

create function vault._crypto_aead_det_encrypt(message bytea, additional bytea, key_id bigint, context bytea = 'pgsodium', nonce bytea = null)
returns bytea
language plpgsql
volatile
security definer
set search_path = ''
as $$
begin
  perform cronkit_vault_private.check_arguments('pgsodium_crypto_aead_det_encrypt_by_id', message, key_id, context, nonce);
  return extensions.pgp_sym_encrypt_bytea(
    message,
    cronkit_vault_private.message_key(additional, key_id, context, nonce),
    'cipher-algo=aes256');
end
$$;

create function vault._crypto_aead_det_decrypt(message bytea, additional bytea, key_id bigint, context bytea = 'pgsodium', nonce bytea = null)
returns bytea
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  perform cronkit_vault_private.check_arguments('pgsodium_crypto_aead_det_decrypt_by_id', message, key_id, context, nonce);
  return extensions.pgp_sym_decrypt_bytea(message, cronkit_vault_private.message_key(additional, key_id, context, nonce));
exception
  -- pgcrypto's "Wrong key or corrupt data" / "Not OpenPGP data": the real extension's AEAD
  -- failure text, which users search for (supabase/vault#29)
  when external_routine_invocation_exception then
    raise exception 'pgsodium_crypto_aead_det_decrypt_by_id: invalid ciphertext' using errcode = 'data_exception';
end
$$;

create function vault._crypto_aead_det_noncegen()
returns bytea
language sql
volatile
set search_path = ''
as $$
  select extensions.gen_random_bytes(16);
$$;

-- ---------------------------------------------------------------------------------------------
-- Secrets

create table vault.secrets (
  id          uuid primary key default gen_random_uuid(),
  name        text,
  description text not null default '',
  secret      text not null,  -- base64 ciphertext
  key_id      uuid,           -- unused since 0.3
  nonce       bytea default vault._crypto_aead_det_noncegen(),
  created_at  timestamptz not null default current_timestamp,
  updated_at  timestamptz not null default current_timestamp
);

comment on table vault.secrets is 'Table with encrypted `secret` column for storing sensitive information on disk.';

-- secrets_name_idx: a second secret with the same name fails with 23505.
create unique index on vault.secrets using btree (name) where name is not null;

-- A plain view (owner's rights on vault.secrets), but the decrypt function is checked against the
-- caller: Supabase grants EXECUTE on it to `postgres` for exactly this view.
create view vault.decrypted_secrets as
select s.id,
  s.name,
  s.description,
  s.secret,
  convert_from(
    vault._crypto_aead_det_decrypt(
      message := decode(s.secret, 'base64'),
      additional := convert_to(s.id::text, 'utf8'),
      key_id := 0,
      context := 'pgsodium'::bytea,
      nonce := s.nonce
    ),
    'utf8'
  ) as decrypted_secret,
  s.key_id,
  s.nonce,
  s.created_at,
  s.updated_at
from vault.secrets s;

create function vault.create_secret(
  new_secret text,
  new_name text = null,
  new_description text = '',
  new_key_id uuid = null  -- unused, as in the real 0.3
)
returns uuid
security definer
language plpgsql
set search_path = ''
as $$
declare
  -- chosen before the INSERT because the id is the ciphertext's additional data
  secret_id uuid := gen_random_uuid();
  secret_nonce bytea := vault._crypto_aead_det_noncegen();
begin
  insert into vault.secrets (id, name, description, secret, nonce)
  values (
    secret_id,
    new_name,
    new_description,
    -- a NULL secret stays NULL and fails on the NOT NULL column, as in the real function
    case when new_secret is not null then
      encode(vault._crypto_aead_det_encrypt(
        message := convert_to(new_secret, 'utf8'),
        additional := convert_to(secret_id::text, 'utf8'),
        key_id := 0,
        context := 'pgsodium'::bytea,
        nonce := secret_nonce), 'base64')
    end,
    secret_nonce);
  return secret_id;
end
$$;

-- NULL arguments keep the current value; an unknown id updates nothing, silently.
create function vault.update_secret(
  secret_id uuid,
  new_secret text = null,
  new_name text = null,
  new_description text = null,
  new_key_id uuid = null  -- unused, as in the real 0.3
)
returns void
security definer
language plpgsql
set search_path = ''
as $$
begin
  update vault.secrets s
  set
    secret = case when new_secret is null then s.secret
                  else encode(vault._crypto_aead_det_encrypt(
                    message := convert_to(new_secret, 'utf8'),
                    additional := convert_to(s.id::text, 'utf8'),
                    key_id := 0,
                    context := 'pgsodium'::bytea,
                    nonce := s.nonce), 'base64')
             end,
    name = coalesce(new_name, s.name),
    description = coalesce(new_description, s.description),
    updated_at = now()
  where s.id = secret_id;
end
$$;

revoke all on function
  vault._crypto_aead_det_encrypt,
  vault._crypto_aead_det_decrypt,
  vault._crypto_aead_det_noncegen,
  vault.create_secret,
  vault.update_secret
from public;

-- Secrets are part of logical dumps (ciphertext only).
select pg_catalog.pg_extension_config_dump('vault.secrets', '');

-- ---------------------------------------------------------------------------------------------
-- Supabase's after-create grants (supabase/postgres, supabase_vault/after-create.sql, for
-- versions other than 0.2.8). No INSERT or UPDATE: secrets change only through create_secret and
-- update_secret, so a direct INSERT fails with 42501. The roles exist on Supabase and in the
-- sandbox; elsewhere the grants are skipped.
do $$
begin
  if exists (select from pg_catalog.pg_roles where rolname = 'postgres') then
    grant usage on schema vault to postgres with grant option;
    grant select, delete, truncate, references on vault.secrets, vault.decrypted_secrets to postgres with grant option;
    grant execute on function vault.create_secret, vault.update_secret, vault._crypto_aead_det_decrypt to postgres with grant option;
  end if;
  if exists (select from pg_catalog.pg_roles where rolname = 'service_role') then
    grant usage on schema vault to service_role;
    grant select, delete on vault.secrets, vault.decrypted_secrets to service_role;
    grant execute on function vault.create_secret, vault.update_secret, vault._crypto_aead_det_decrypt to service_role;
  end if;
end
$$;
