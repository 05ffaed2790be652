"""privacy: audit log (append-only), opt-out markers, dashboard sessions, token expiry, test contacts, erasure
requests, stable hashing key, retention marks, anonymous ledger lines

Revision ID: 0003_issue15b_privacy
Revises: 0002_incentives
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_issue15b_privacy"
down_revision = "0002_incentives"
branch_labels = None
depends_on = ("0002_campaigns", "0002_gaps")

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Moment = sa.DateTime(timezone=True)
Json = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")

_PG_APPEND_ONLY = """
CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    op.add_column("contacts", sa.Column("test", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("contacts", sa.Column("erase_requested_at", Moment, nullable=True))
    op.execute("UPDATE contacts SET test = true WHERE channel = 'console'")
    op.create_index("ix_contacts_test", "contacts", ["id"], postgresql_where=sa.text("test"),
                    sqlite_where=sa.text("test"))
    op.add_column("api_tokens", sa.Column("expires_at", Moment, nullable=True))
    op.create_table(
        "dashboard_sessions",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("token_id", Id, nullable=False),
        sa.Column("created_at", Moment, nullable=False),
        sa.Column("expires_at", Moment, nullable=False),
        sa.Column("revoked_at", Moment, nullable=True),
        sa.ForeignKeyConstraint(["token_id"], ["api_tokens.id"]),
        sa.PrimaryKeyConstraint("id_hash"),
    )
    op.create_index("ix_dashboard_sessions_token_id", "dashboard_sessions", ["token_id"])
    op.create_table(
        "audit_log",
        sa.Column("id", Id, nullable=False),
        sa.Column("at", Moment, nullable=False),
        sa.Column("actor", sa.String(length=160), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=160), nullable=True),
        sa.Column("detail", Json, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_table(
        "opt_out_markers",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", Moment, nullable=False),
        sa.PrimaryKeyConstraint("kind", "hash"),
    )
    op.create_table(
        "retention_marks",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", Moment, nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "vault_keys",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.Column("updated_at", Moment, nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    with op.batch_alter_table("incentives") as batch:
        batch.alter_column("contact_id", existing_type=Id, nullable=True)
        batch.alter_column("session_id", existing_type=Id, nullable=True)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_APPEND_ONLY)
        op.execute("CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
                   "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()")
    else:
        for event in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER audit_log_no_{event.lower()} BEFORE {event} ON audit_log "
                       "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
    with op.batch_alter_table("incentives") as batch:
        batch.alter_column("session_id", existing_type=Id, nullable=False)
        batch.alter_column("contact_id", existing_type=Id, nullable=False)
    op.drop_table("vault_keys")
    op.drop_table("retention_marks")
    op.drop_table("opt_out_markers")
    op.drop_index("ix_audit_log_at", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_index("ix_dashboard_sessions_token_id", table_name="dashboard_sessions")
    op.drop_table("dashboard_sessions")
    op.drop_column("api_tokens", "expires_at")
    op.drop_index("ix_contacts_test", table_name="contacts")
    op.drop_column("contacts", "erase_requested_at")
    op.drop_column("contacts", "test")
