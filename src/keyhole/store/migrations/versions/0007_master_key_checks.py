"""a key check per master key id

Revision ID: 0007
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from keyhole.store.base import UTCDateTime

revision = "0007"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "master_key_checks",
        sa.Column("kid", sa.String(length=32), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("kid", name=op.f("pk_master_key_checks")),
    )


def downgrade() -> None:
    op.drop_table("master_key_checks")
