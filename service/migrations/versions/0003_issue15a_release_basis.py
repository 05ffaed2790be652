"""gap releases: what each release decided that is not published (figures held back, hidden cells' sizes)

Revision ID: 0003_issue15a_release_basis
Revises: 0002_gaps
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003_issue15a_release_basis"
down_revision = "0002_gaps"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "gap_snapshots",
        sa.Column("basis", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                  nullable=True),
    )


def downgrade() -> None:
    op.drop_column("gap_snapshots", "basis")
