"""proxy_calls: one (organization_id, connection_id, created_at) index for every per-connection
statement, in place of (connection_id, created_at) and the organization-only index that
(organization_id, created_at) already covers

Revision ID: 0013
Revises: 0010
"""

from alembic import op

revision = "0013"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("proxy_calls", schema=None) as batch_op:
        batch_op.drop_index("ix_proxy_calls_connection_created")
        batch_op.drop_index(batch_op.f("ix_proxy_calls_organization_id"))
        batch_op.create_index(
            "ix_proxy_calls_organization_connection_created",
            ["organization_id", "connection_id", "created_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("proxy_calls", schema=None) as batch_op:
        batch_op.drop_index("ix_proxy_calls_organization_connection_created")
        batch_op.create_index(batch_op.f("ix_proxy_calls_organization_id"), ["organization_id"], unique=False)
        batch_op.create_index(
            "ix_proxy_calls_connection_created", ["connection_id", "created_at"], unique=False
        )
