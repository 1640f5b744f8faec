"""partner accounts, user roles, SSO settings, shared connections, the organization audit index;
principal ids (``org:<id>``, ``partner:<id>``) fit the columns that record them

Revision ID: 0010
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("partner_organization_id", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("sso_issuer", sa.String(length=2048), nullable=True))
        batch_op.add_column(sa.Column("sso_domain", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("sso_org_id", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("sso_client_id", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("sso_client_secret", sa.Text(), nullable=True))
        # Unique per partner account now, not across the whole gateway.
        batch_op.drop_constraint(batch_op.f("uq_organizations_name"), type_="unique")
        batch_op.create_unique_constraint(
            "uq_organizations_partner_name", ["partner_organization_id", "name"]
        )
        batch_op.create_index(batch_op.f("ix_organizations_name"), ["name"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_organizations_partner_organization_id"), ["partner_organization_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_organizations_partner_organization_id_organizations"),
            "organizations",
            ["partner_organization_id"],
            ["id"],
        )

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("role", sa.String(length=16), server_default="member", nullable=False))
        batch_op.create_unique_constraint("uq_users_organization_email", ["organization_id", "email"])
    # Every user made before roles existed was made by ``keyhole bootstrap``: its administrator.
    op.execute("UPDATE users SET role = 'admin'")

    with op.batch_alter_table("connections", schema=None) as batch_op:
        for column in ("created_by", "updated_by"):
            batch_op.alter_column(
                column, existing_type=sa.String(length=36), type_=sa.String(length=64), existing_nullable=True
            )
        batch_op.add_column(sa.Column("parent_connection_id", sa.String(length=36), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_connections_parent_connection_id"), ["parent_connection_id"], unique=False
        )
        batch_op.create_unique_constraint(
            "uq_connections_parent_organization", ["parent_connection_id", "organization_id"]
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_connections_parent_connection_id_connections"),
            "connections",
            ["parent_connection_id"],
            ["id"],
            ondelete="CASCADE",
        )

    with op.batch_alter_table("proxy_calls", schema=None) as batch_op:
        batch_op.alter_column(
            "principal_id",
            existing_type=sa.String(length=36),
            type_=sa.String(length=64),
            existing_nullable=False,
        )
        batch_op.add_column(sa.Column("parent_connection_id", sa.String(length=36), nullable=True))
        batch_op.create_index(
            "ix_proxy_calls_organization_created", ["organization_id", "created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("proxy_calls", schema=None) as batch_op:
        batch_op.drop_index("ix_proxy_calls_organization_created")
        batch_op.drop_column("parent_connection_id")
        batch_op.alter_column(
            "principal_id",
            existing_type=sa.String(length=64),
            type_=sa.String(length=36),
            existing_nullable=False,
        )

    with op.batch_alter_table("connections", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_connections_parent_connection_id_connections"), type_="foreignkey"
        )
        batch_op.drop_constraint("uq_connections_parent_organization", type_="unique")
        batch_op.drop_index(batch_op.f("ix_connections_parent_connection_id"))
        batch_op.drop_column("parent_connection_id")
        for column in ("created_by", "updated_by"):
            batch_op.alter_column(
                column, existing_type=sa.String(length=64), type_=sa.String(length=36), existing_nullable=True
            )

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_constraint("uq_users_organization_email", type_="unique")
        batch_op.drop_column("role")

    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_organizations_partner_organization_id_organizations"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_organizations_partner_organization_id"))
        batch_op.drop_index(batch_op.f("ix_organizations_name"))
        batch_op.drop_constraint("uq_organizations_partner_name", type_="unique")
        batch_op.create_unique_constraint(batch_op.f("uq_organizations_name"), ["name"])
        for column in (
            "sso_client_secret",
            "sso_client_id",
            "sso_org_id",
            "sso_domain",
            "sso_issuer",
            "partner_organization_id",
        ):
            batch_op.drop_column(column)
