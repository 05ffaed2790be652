"""outbound messages indexed only while they matter: due ones by status, sent ones by provider id

Every reply is inserted `queued`, claimed `sending` and recorded `sent`, each a new row version with an entry in
every index. `ix_outbound_status_due` now holds only `queued` and `sending` rows (the sweeper's, erasure's and the
batch's reads), and `ix_outbound_provider_id` only rows with a provider id (the status callbacks' read): five index
entries fewer per reply, and indexes the size of the backlog instead of the whole history.

Revision ID: 0005_outbound_partial_indexes
Revises: 0004_pending_by_address
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_outbound_partial_indexes"
down_revision = "0004_pending_by_address"
branch_labels = None
depends_on = None

DUE = sa.text("status IN ('queued', 'sending')")
HANDED = sa.text("provider_id IS NOT NULL")


def upgrade() -> None:
    op.drop_index("ix_outbound_status_due", table_name="outbound_messages")
    op.drop_index("ix_outbound_provider_id", table_name="outbound_messages")
    op.create_index("ix_outbound_status_due", "outbound_messages", ["status", "next_attempt_at"], unique=False,
                    postgresql_where=DUE, sqlite_where=DUE)
    op.create_index("ix_outbound_provider_id", "outbound_messages", ["provider_id"], unique=False,
                    postgresql_where=HANDED, sqlite_where=HANDED)


def downgrade() -> None:
    op.drop_index("ix_outbound_status_due", table_name="outbound_messages", postgresql_where=DUE, sqlite_where=DUE)
    op.drop_index("ix_outbound_provider_id", table_name="outbound_messages", postgresql_where=HANDED,
                  sqlite_where=HANDED)
    op.create_index("ix_outbound_status_due", "outbound_messages", ["status", "next_attempt_at"], unique=False)
    op.create_index("ix_outbound_provider_id", "outbound_messages", ["provider_id"], unique=False)
