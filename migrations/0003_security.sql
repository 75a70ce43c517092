-- Device and operator credentials ([protocol §5], issue 6).

-- Per-thing MQTT passwords. Only a scrypt hash is kept: "scrypt$N$r$p$salt$hash" (base64url salt and hash), so
-- the parameters can be raised later without invalidating old rows. A thing holds at most two ACTIVE secrets
-- so a rotation can overlap; a revoked row is kept for the audit trail.
CREATE TABLE thing_credentials (
  credential_id  text PRIMARY KEY,
  thing_name     text NOT NULL REFERENCES things (thing_name) ON DELETE CASCADE,
  secret_hash    text NOT NULL,
  status         text NOT NULL CHECK (status IN ('ACTIVE', 'REVOKED')),
  created_at     timestamptz NOT NULL,
  revoked_at     timestamptz
);
CREATE INDEX thing_credentials_thing ON thing_credentials (thing_name) WHERE status = 'ACTIVE';

-- Operator API keys. The secret is never stored: it is derived from the instance master key, the access key id
-- and secret_salt (HMAC-SHA256), because SigV4 is a symmetric MAC and the server must be able to reproduce the
-- signing key; the database alone yields no secret. secret_check is a scrypt hash of the secret, checked when a
-- key is first used by a process, so a wrong master key is detected instead of silently refusing every key.
CREATE TABLE operator_keys (
  access_key_id  text PRIMARY KEY,
  role           text NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
  description    text,
  secret_salt    text NOT NULL,
  secret_check   text NOT NULL,
  status         text NOT NULL CHECK (status IN ('ACTIVE', 'REVOKED')),
  created_at     timestamptz NOT NULL,
  revoked_at     timestamptz
);
