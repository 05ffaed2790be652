"""incentives: budgets per survey wave, reservations at consent, and the ledger of earned credits

Revision ID: 0002_incentives
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_incentives"
down_revision = "0001"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Moment = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "incentive_budgets",
        sa.Column("survey_id", sa.String(length=64), nullable=False),
        sa.Column("wave", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=8), nullable=False),
        sa.Column("budget_cents", sa.BigInteger(), nullable=True),
        sa.Column("committed_cents", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", Moment, nullable=False),
        sa.PrimaryKeyConstraint("survey_id", "wave"),
    )
    op.create_table(
        "incentive_reservations",
        sa.Column("id", Id, nullable=False),
        sa.Column("session_id", Id, nullable=False),
        sa.Column("survey_id", sa.String(length=64), nullable=False),
        sa.Column("wave", sa.Integer(), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("created_at", Moment, nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["survey_sessions.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("session_id"),
    )
    op.create_table(
        "incentives",
        sa.Column("id", Id, nullable=False),
        sa.Column("contact_id", Id, nullable=False),
        sa.Column("session_id", Id, nullable=False),
        sa.Column("survey_id", sa.String(length=64), nullable=False),
        sa.Column("wave", sa.Integer(), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("idempotency_key", sa.String(length=64), nullable=False),
        sa.Column("phone_hash", sa.String(length=64), nullable=True),
        sa.Column("phone_enc", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("transaction_id", sa.String(length=128), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", Moment, nullable=True),
        sa.Column("submitted_at", Moment, nullable=True),
        sa.Column("paid_at", Moment, nullable=True),
        sa.Column("created_at", Moment, nullable=False),
        sa.Column("updated_at", Moment, nullable=False),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"]),
        sa.ForeignKeyConstraint(["session_id"], ["survey_sessions.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("contact_id", "survey_id", "wave", name="uq_incentives_contact_survey_wave"),
        sa.UniqueConstraint("phone_hash", "survey_id", "wave", name="uq_incentives_phone_survey_wave"),
        sa.UniqueConstraint("idempotency_key"),
        sa.UniqueConstraint("session_id"),
    )
    op.create_index("ix_incentives_status_due", "incentives", ["status", "next_attempt_at"], unique=False)
    op.create_index("ix_incentives_survey", "incentives", ["survey_id", "wave", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_incentives_survey", table_name="incentives")
    op.drop_index("ix_incentives_status_due", table_name="incentives")
    op.drop_table("incentives")
    op.drop_table("incentive_reservations")
    op.drop_table("incentive_budgets")
