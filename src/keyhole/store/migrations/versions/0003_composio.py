"""composio dialect: connected-account columns, auth configs, tool-router sessions

Revision ID: 0003
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from keyhole.store.base import UTCDateTime

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("connections", schema=None) as batch_op:
        batch_op.add_column(sa.Column("account_user_id", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("account_alias", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("account_status", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("account_status_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("auth_config_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("auth_scheme", sa.String(length=32), nullable=True))
        batch_op.create_index(batch_op.f("ix_connections_account_user_id"), ["account_user_id"], unique=False)

    op.create_table(
        "auth_configs",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("organization_id", sa.String(length=36), nullable=False),
        sa.Column("toolkit_slug", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("auth_scheme", sa.String(length=32), nullable=False),
        sa.Column("credentials", sa.Text(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("tool_router_enabled", sa.Boolean(), nullable=False),
        sa.Column("tool_access_config", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_auth_configs_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auth_configs")),
    )
    with op.batch_alter_table("auth_configs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_auth_configs_organization_id"), ["organization_id"], unique=False
        )

    op.create_table(
        "tool_router_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("organization_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("config_version", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_tool_router_sessions_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tool_router_sessions")),
    )
    with op.batch_alter_table("tool_router_sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_tool_router_sessions_organization_id"), ["organization_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("tool_router_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tool_router_sessions_organization_id"))
    op.drop_table("tool_router_sessions")
    with op.batch_alter_table("auth_configs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_auth_configs_organization_id"))
    op.drop_table("auth_configs")
    with op.batch_alter_table("connections", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_connections_account_user_id"))
        batch_op.drop_column("auth_scheme")
        batch_op.drop_column("auth_config_id")
        batch_op.drop_column("account_status_reason")
        batch_op.drop_column("account_status")
        batch_op.drop_column("account_alias")
        batch_op.drop_column("account_user_id")
