"""WhatsApp: each contact's session window and opt-in; campaigns' channel, templates and SMS fallback; delivery
reports that come before their message is recorded

Revision ID: 0003_issue18_whatsapp
Revises: 0002_campaigns
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003_issue18_whatsapp"
down_revision = "0002_campaigns"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Moment = sa.DateTime(timezone=True)
Json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("contacts") as table:
        table.add_column(sa.Column("last_inbound_at", Moment, nullable=True))
        table.add_column(sa.Column("last_template_at", Moment, nullable=True))
        table.add_column(sa.Column("opt_in_at", Moment, nullable=True))
        table.add_column(sa.Column("opt_in_source", sa.String(length=128), nullable=True))
        table.add_column(sa.Column("opt_in_withdrawn_at", Moment, nullable=True))
    with op.batch_alter_table("campaigns") as table:
        table.add_column(sa.Column("channel", sa.String(length=16), nullable=True))
        table.add_column(sa.Column("templates", Json, nullable=True))
        table.add_column(sa.Column("fallback", sa.String(length=16), nullable=True))
        table.add_column(sa.Column("opt_in_required", sa.Boolean(), nullable=False, server_default=sa.true()))
    with op.batch_alter_table("campaign_messages") as table:
        table.add_column(sa.Column("fallback_of", Id, nullable=True))
    op.create_index("ix_campaign_messages_outbound", "campaign_messages", ["outbound_id"])
    op.create_table(
        "early_reports",
        sa.Column("provider_id", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error_code", sa.String(length=32), nullable=True),
        sa.Column("received_at", Moment, nullable=False),
        sa.PrimaryKeyConstraint("provider_id"),
    )


def downgrade() -> None:
    op.drop_table("early_reports")
    op.drop_index("ix_campaign_messages_outbound", table_name="campaign_messages")
    with op.batch_alter_table("campaign_messages") as table:
        table.drop_column("fallback_of")
    with op.batch_alter_table("campaigns") as table:
        for name in ("opt_in_required", "fallback", "templates", "channel"):
            table.drop_column(name)
    with op.batch_alter_table("contacts") as table:
        for name in ("opt_in_withdrawn_at", "opt_in_source", "opt_in_at", "last_template_at", "last_inbound_at"):
            table.drop_column(name)
