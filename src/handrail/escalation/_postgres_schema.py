"""The PostgreSQL escalation tables: their migrations, and upgrading a schema to the current one.

Each migration moves the schema up one version; ``handrail_schema`` records
the version of each component.  Upgrades of one schema are serialized by an
advisory lock, whichever process runs them, and are all or nothing.
"""

from __future__ import annotations

import re
import zlib
from typing import TYPE_CHECKING, Any

from .._errors import ConfigurationError
from ._postgres_urls import redact_url

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "DECISION_REFUSED",
    "SCHEMA_VERSION",
    "check_schema",
    "outdated",
    "read_version",
    "upgrade_tables",
]

_COMPONENT = "escalations"
_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")

# Each step moves the schema up one version; a step, once released, never
# changes (add a new one instead).  ``{s}`` is the quoted schema name.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE {s}.escalations (
            id text PRIMARY KEY,
            state text NOT NULL,
            route text NOT NULL,
            opened_at timestamptz NOT NULL,
            next_due timestamptz,
            version integer NOT NULL,
            body jsonb NOT NULL
        )""",
        "CREATE INDEX escalations_next_due ON {s}.escalations (next_due) "
        "WHERE next_due IS NOT NULL",
        "CREATE INDEX escalations_opened ON {s}.escalations (opened_at, id)",
        "CREATE INDEX escalations_state ON {s}.escalations (state, opened_at, id)",
        # seq is the order deliveries were written in.
        """CREATE TABLE {s}.deliveries (
            seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            id text NOT NULL UNIQUE,
            escalation_id text NOT NULL,
            target text NOT NULL,
            payload jsonb NOT NULL,
            not_before timestamptz NOT NULL,
            attempts integer NOT NULL DEFAULT 0,
            last_error text,
            lease_until timestamptz,
            status text NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'done', 'given_up'))
        )""",
        "CREATE INDEX deliveries_pending ON {s}.deliveries (seq) WHERE status = 'pending'",
        "CREATE INDEX deliveries_escalation ON {s}.deliveries (escalation_id, seq)",
    ),
    # 2: external ids (a framework's tool-call id), one case each.  Cases stored
    # before keep NULL: they were opened without one.
    (
        "ALTER TABLE {s}.escalations ADD COLUMN external_id text",
        "CREATE UNIQUE INDEX escalations_external_id ON {s}.escalations (external_id) "
        "WHERE external_id IS NOT NULL",
    ),
    # 3: only a role with the decision grant decides.  The agent's role must write
    # this table (it opens, cancels and runs cases, and fires timers) yet must not
    # be able to approve its own case, through handrail or with a bare UPDATE.
    (
        # Empty; UPDATE on it is the grant.  A table privilege, not a role: granting
        # it needs no CREATEROLE, the owner holds it from the start, and it is per schema.
        "CREATE TABLE {s}.decision_grant (granted boolean PRIMARY KEY CHECK (granted))",
        "COMMENT ON TABLE {s}.decision_grant IS 'Empty.  A role with UPDATE on this table "
        "may decide escalations in this schema (acknowledge, approve, reject): GRANT UPDATE "
        "ON <schema>.decision_grant TO <role>.  See handrail docs/escalation-postgres.md.'",
        # SECURITY INVOKER: current_user is whoever writes.  search_path pinned, so a
        # role cannot shadow the built-ins this calls with functions of its own.
        """CREATE FUNCTION {s}.check_decision_grant() RETURNS trigger
        LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $check$
        DECLARE
            decided CONSTANT text[] := ARRAY['acknowledged', 'approved', 'rejected'];
            old_body jsonb := CASE WHEN TG_OP = 'UPDATE' THEN OLD.body ELSE '{{}}' END;
            old_state text := CASE WHEN TG_OP = 'UPDATE' THEN OLD.state END;
            doing text;
        BEGIN
            IF has_table_privilege(format('%I.decision_grant', TG_TABLE_SCHEMA), 'UPDATE') THEN
                RETURN NEW;
            END IF;
            IF NEW.state IS DISTINCT FROM old_state AND NEW.state = ANY (decided) THEN
                doing := format('move it to %s', NEW.state);
            ELSIF NEW.body->>'state' IS DISTINCT FROM old_body->>'state'
                AND NEW.body->>'state' = ANY (decided) THEN
                doing := format('move it to %s', NEW.body->>'state');
            ELSIF jsonb_array_length(coalesce(NEW.body->'approvals', '[]'))
                > jsonb_array_length(coalesce(old_body->'approvals', '[]')) THEN
                doing := 'add an approval to it';
            ELSIF NEW.body->'allowed' = 'true' AND old_body->'allowed' IS DISTINCT FROM 'true'
                AND NOT (TG_OP = 'UPDATE' AND NEW.body->>'state' = 'expired'
                         AND old_body->'allow_on_timeout' = 'true') THEN
                doing := 'allow its action';
            ELSIF TG_OP = 'UPDATE' AND (
                NEW.id IS DISTINCT FROM OLD.id
                OR NEW.body->'id' IS DISTINCT FROM OLD.body->'id'
                OR NEW.body->'request' IS DISTINCT FROM OLD.body->'request'
                OR NEW.body->'decision' IS DISTINCT FROM OLD.body->'decision'
                OR NEW.body->'route' IS DISTINCT FROM OLD.body->'route'
                OR NEW.body->'allow_on_timeout' IS DISTINCT FROM OLD.body->'allow_on_timeout') THEN
                doing := 'change its id, request, decision or route';
            -- A timer's move to the next level sets that level's deciders; nothing else may.
            ELSIF TG_OP = 'UPDATE' AND NEW.body->'deciders' IS DISTINCT FROM old_body->'deciders'
                AND NEW.body->'level' IS NOT DISTINCT FROM old_body->'level' THEN
                doing := 'change who may decide it';
            ELSIF TG_OP = 'UPDATE' AND coalesce(OLD.body->'executed_at', 'null') <> 'null'
                AND NEW.body->'executed_at' IS DISTINCT FROM OLD.body->'executed_at' THEN
                doing := 'undo its execution';
            END IF;
            IF doing IS NULL THEN
                RETURN NEW;
            END IF;
            RAISE EXCEPTION USING
                ERRCODE = 'HR001',
                MESSAGE = format('role %I may not %s: it lacks the decision grant',
                                 current_user, doing),
                DETAIL = NEW.id,
                HINT = format('GRANT UPDATE ON %I.decision_grant TO %I',
                              TG_TABLE_SCHEMA, current_user);
        END
        $check$""",
        "CREATE TRIGGER escalations_decision_grant BEFORE INSERT OR UPDATE ON {s}.escalations "
        "FOR EACH ROW EXECUTE FUNCTION {s}.check_decision_grant()",
    ),
)

DECISION_REFUSED = "HR001"
"""The SQLSTATE the trigger raises when a role without the decision grant decides."""

SCHEMA_VERSION = len(_MIGRATIONS)
"""The schema version this release of handrail reads and writes."""

_VERSION_TABLE = """CREATE TABLE IF NOT EXISTS {s}.handrail_schema (
    component text PRIMARY KEY,
    version integer NOT NULL,
    upgraded_at timestamptz NOT NULL DEFAULT now()
)"""


def check_schema(schema: str) -> None:
    if not _SCHEMA_NAME.fullmatch(schema):
        raise ConfigurationError(
            f"schema must be a plain PostgreSQL name (a letter or _, then letters, digits "
            f"or _, at most 63), got {schema!r}"
        )


def read_version(connection: psycopg.Connection[Any], schema: str) -> int:
    from psycopg import sql

    exists = connection.execute(
        "SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = %s AND tablename = %s",
        (schema, "handrail_schema"),
    ).fetchone()
    if exists is None:
        return 0
    found = connection.execute(
        sql.SQL("SELECT version FROM {s}.handrail_schema WHERE component = %s").format(
            s=sql.Identifier(schema)
        ),
        (_COMPONENT,),
    ).fetchone()
    return 0 if found is None else int(found[0])


def upgrade_tables(connection: psycopg.Connection[Any], schema: str) -> int:
    from psycopg import sql

    if read_version(connection, schema) == SCHEMA_VERSION:
        return 0  # the common case, without taking the lock
    name = sql.Identifier(schema)
    with connection.transaction():
        # Upgrades of one schema queue here, whichever process runs them.
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key(schema),))
        exists = connection.execute(
            "SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = %s", (schema,)
        ).fetchone()
        if exists is None:  # checked first: CREATE needs a privilege an existing schema does not
            connection.execute(sql.SQL("CREATE SCHEMA {s}").format(s=name))
        connection.execute(sql.SQL(_VERSION_TABLE).format(s=name))
        version = read_version(connection, schema)
        if version > SCHEMA_VERSION:
            raise outdated("", schema, version)
        for steps in _MIGRATIONS[version:]:
            for statement in steps:
                connection.execute(sql.SQL(statement).format(s=name))
        connection.execute(
            sql.SQL(
                "INSERT INTO {s}.handrail_schema (component, version) VALUES (%s, %s) "
                "ON CONFLICT (component) DO UPDATE SET version = excluded.version, "
                "upgraded_at = now()"
            ).format(s=name),
            (_COMPONENT, SCHEMA_VERSION),
        )
    return SCHEMA_VERSION - version


def _lock_key(schema: str) -> int:
    """A stable 64-bit advisory lock key for upgrading ``schema``."""
    key = zlib.crc32(f"handrail.escalations:{schema}".encode())
    return key - (1 << 32) if key >= 1 << 31 else key


def outdated(url: str, schema: str, version: int) -> ConfigurationError:
    where = f"{redact_url(url)}: " if url else ""
    if version > SCHEMA_VERSION:
        return ConfigurationError(
            f"{where}schema {schema!r} is at version {version}, newer than this handrail "
            f"supports ({SCHEMA_VERSION}); upgrade handrail"
        )
    return ConfigurationError(
        f"{where}schema {schema!r} is at version {version}, this handrail needs "
        f"{SCHEMA_VERSION}; run `handrail db upgrade URL --schema {schema}`"
    )
