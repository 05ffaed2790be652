"""pending messages indexed by sender: a batch reads its senders' pending messages from this small index

Replaces ix_inbound_pending (status, id), which also served every query on pending messages; the new partial index
holds only pending rows too, so the sweeper, the metrics and the backlog read it the same way. The batch's read by
address_hash no longer depends on the planner's statistics of a young, fast-growing table.

Revision ID: 0004_pending_by_address
Revises: 0003_issue15a_release_basis, 0003_issue15b_privacy, 0003_issue18_whatsapp
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_pending_by_address"
down_revision = ("0003_issue15a_release_basis", "0003_issue15b_privacy", "0003_issue18_whatsapp")
branch_labels = None
depends_on = None

PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    op.create_index("ix_inbound_pending_address", "inbound_messages", ["address_hash", "id"], unique=False,
                    postgresql_where=PENDING, sqlite_where=PENDING)
    op.drop_index("ix_inbound_pending", table_name="inbound_messages", postgresql_where=PENDING)


def downgrade() -> None:
    op.create_index("ix_inbound_pending", "inbound_messages", ["status", "id"], unique=False,
                    postgresql_where=PENDING)
    op.drop_index("ix_inbound_pending_address", table_name="inbound_messages", postgresql_where=PENDING,
                  sqlite_where=PENDING)
