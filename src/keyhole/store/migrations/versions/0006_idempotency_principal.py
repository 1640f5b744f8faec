"""idempotency keys scoped to the principal that sent them

Revision ID: 0006
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A record made while keys were shared by the whole organization names no principal, so
    # it may answer nobody: it goes, and a retry of its request runs afresh.
    op.execute(sa.text("DELETE FROM idempotency_keys"))
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("principal_id", sa.String(length=64), nullable=False))
        batch_op.drop_constraint("uq_idempotency_keys_organization_key", type_="unique")
        batch_op.create_unique_constraint(
            "uq_idempotency_keys_principal_key", ["organization_id", "principal_id", "key"]
        )


def downgrade() -> None:
    # Several principals may hold the same key now; one organization-wide key cannot keep them.
    op.execute(sa.text("DELETE FROM idempotency_keys"))
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_constraint("uq_idempotency_keys_principal_key", type_="unique")
        batch_op.create_unique_constraint("uq_idempotency_keys_organization_key", ["organization_id", "key"])
        batch_op.drop_column("principal_id")
