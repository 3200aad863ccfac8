"""cache revisions: resident.rev, dialog_state.rev, cache_rev, and the triggers that change them

Every write of a resident row or of its role grants gives the resident a new random ``rev``; every write of a
community or a building gives the ``communities`` row of ``cache_rev`` a new random ``rev``; every write of a dialog
state gives it a new random ``rev`` (SqlStateStore sets one itself; the trigger covers any other writer). The
in-process caches compare these with the revisions an update reads at its start, so a change made by any process
— the CLI, another worker, a plain SQL UPDATE — is seen by the very next update. Random values, not counters: a
row deleted and created again never repeats a revision.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 20:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COMMUNITY_TABLES = ("community", "building")

SQLITE_TRIGGERS = {
    # A writer that did not set a new rev gets one (the WHEN clause also stops the trigger re-firing itself).
    "resident_rev_insert": """AFTER INSERT ON resident FOR EACH ROW WHEN NEW.rev IS NULL
        BEGIN UPDATE resident SET rev = random() WHERE id = NEW.id; END""",
    "resident_rev_update": """AFTER UPDATE ON resident FOR EACH ROW WHEN NEW.rev IS OLD.rev
        BEGIN UPDATE resident SET rev = random() WHERE id = NEW.id; END""",
    "role_grant_rev_insert": """AFTER INSERT ON role_grant FOR EACH ROW
        BEGIN UPDATE resident SET rev = random() WHERE id = NEW.resident_id; END""",
    "role_grant_rev_update": """AFTER UPDATE ON role_grant FOR EACH ROW
        BEGIN UPDATE resident SET rev = random() WHERE id IN (OLD.resident_id, NEW.resident_id); END""",
    "role_grant_rev_delete": """AFTER DELETE ON role_grant FOR EACH ROW
        BEGIN UPDATE resident SET rev = random() WHERE id = OLD.resident_id; END""",
    "dialog_state_rev_insert": """AFTER INSERT ON dialog_state FOR EACH ROW WHEN NEW.rev IS NULL
        BEGIN UPDATE dialog_state SET rev = random() WHERE user_id = NEW.user_id AND chat_id = NEW.chat_id; END""",
    "dialog_state_rev_update": """AFTER UPDATE ON dialog_state FOR EACH ROW WHEN NEW.rev IS OLD.rev
        BEGIN UPDATE dialog_state SET rev = random() WHERE user_id = NEW.user_id AND chat_id = NEW.chat_id; END""",
    **{
        f"{table}_rev_{event.lower()}": f"""AFTER {event} ON {table} FOR EACH ROW
        BEGIN INSERT OR REPLACE INTO cache_rev (name, rev) VALUES ('communities', random()); END"""
        for table in COMMUNITY_TABLES
        for event in ("INSERT", "UPDATE", "DELETE")
    },
}

POSTGRES_FUNCTIONS = {
    # 53 random bits (what random() gives): enough that a row never gets back a revision it had.
    "sicheng_random_rev()": """RETURNS bigint LANGUAGE sql VOLATILE AS
        $$ SELECT floor(random() * 9007199254740991)::bigint $$""",
    "sicheng_row_rev()": """RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                IF NEW.rev IS NULL THEN NEW.rev := sicheng_random_rev(); END IF;
            ELSIF NEW.rev IS NOT DISTINCT FROM OLD.rev THEN
                NEW.rev := sicheng_random_rev();
            END IF;
            RETURN NEW;
        END $$""",
    "sicheng_role_grant_rev()": """RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP <> 'INSERT' THEN
                UPDATE resident SET rev = sicheng_random_rev() WHERE id = OLD.resident_id;
            END IF;
            IF TG_OP <> 'DELETE' THEN
                UPDATE resident SET rev = sicheng_random_rev() WHERE id = NEW.resident_id;
            END IF;
            RETURN NULL;
        END $$""",
    "sicheng_communities_rev()": """RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO cache_rev (name, rev) VALUES ('communities', sicheng_random_rev())
            ON CONFLICT (name) DO UPDATE SET rev = EXCLUDED.rev;
            RETURN NULL;
        END $$""",
}

POSTGRES_TRIGGERS = {
    "resident_rev": "BEFORE INSERT OR UPDATE ON resident FOR EACH ROW EXECUTE FUNCTION sicheng_row_rev()",
    "dialog_state_rev": "BEFORE INSERT OR UPDATE ON dialog_state FOR EACH ROW EXECUTE FUNCTION sicheng_row_rev()",
    "role_grant_rev": "AFTER INSERT OR UPDATE OR DELETE ON role_grant FOR EACH ROW EXECUTE FUNCTION sicheng_role_grant_rev()",
    **{
        f"{table}_rev": f"AFTER INSERT OR UPDATE OR DELETE ON {table} FOR EACH STATEMENT "
        "EXECUTE FUNCTION sicheng_communities_rev()"
        for table in COMMUNITY_TABLES
    },
}


def upgrade() -> None:
    op.add_column("resident", sa.Column("rev", sa.BigInteger(), nullable=True))
    op.add_column("dialog_state", sa.Column("rev", sa.BigInteger(), nullable=True))
    op.create_table(
        "cache_rev",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("rev", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_cache_rev")),
    )
    if op.get_context().dialect.name == "postgresql":
        for signature, body in POSTGRES_FUNCTIONS.items():
            op.execute(f"CREATE FUNCTION {signature} {body}")
        for name, definition in POSTGRES_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {definition}")
        random_rev = "sicheng_random_rev()"
    else:
        for name, definition in SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {definition}")
        random_rev = "random()"
    op.execute(f"UPDATE resident SET rev = {random_rev}")
    op.execute(f"UPDATE dialog_state SET rev = {random_rev}")
    op.execute(f"INSERT INTO cache_rev (name, rev) VALUES ('communities', {random_rev})")


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        for name, definition in POSTGRES_TRIGGERS.items():
            table = definition.split(" ON ", 1)[1].split()[0]
            op.execute(f"DROP TRIGGER {name} ON {table}")
        for signature in reversed(list(POSTGRES_FUNCTIONS)):
            op.execute(f"DROP FUNCTION {signature}")
    else:
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER {name}")
    op.drop_table("cache_rev")
    with op.batch_alter_table("dialog_state", schema=None) as batch_op:
        batch_op.drop_column("rev")
    with op.batch_alter_table("resident", schema=None) as batch_op:
        batch_op.drop_column("rev")
