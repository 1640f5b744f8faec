"""queries.field_kinds: the kind of each result column (integer, float, timestamp…), which gives
the typed exports (Parquet, Arrow) their schema; queries.column_batches: how many Arrow batches a
columnar run stored beside its pages for those exports

Revision ID: 0014
Revises: 0012, 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = ("0012", "0013")
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("queries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("field_kinds", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("column_batches", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("queries", schema=None) as batch_op:
        batch_op.drop_column("column_batches")
        batch_op.drop_column("field_kinds")
