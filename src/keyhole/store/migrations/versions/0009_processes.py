"""running processes and their heartbeats

Revision ID: 0009
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from keyhole.store.base import UTCDateTime

revision = "0009"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "processes",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("queues", sa.JSON(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("reported_at", UTCDateTime(), nullable=False),
        sa.Column("seen_at", UTCDateTime(), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_processes")),
    )
    op.create_index(op.f("ix_processes_seen_at"), "processes", ["seen_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_processes_seen_at"), table_name="processes")
    op.drop_table("processes")
