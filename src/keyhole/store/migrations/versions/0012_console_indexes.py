"""indexes of the console's reads: an owner's queries and async jobs, idle browser sessions

Revision ID: 0012
Revises: 0002, 0004, 0011
"""

from alembic import op

revision = "0012"
down_revision = ("0002", "0004", "0011")
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_queries_owner_created",
        "queries",
        ["organization_id", "owner_id", "created_at", "id"],
        unique=False,
    )
    op.create_index(
        "ix_jobs_owner_type_created",
        "jobs",
        ["organization_id", "owner_id", "type", "created_at", "id"],
        unique=False,
    )
    op.create_index(op.f("ix_browser_sessions_seen_at"), "browser_sessions", ["seen_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_browser_sessions_seen_at"), table_name="browser_sessions")
    op.drop_index("ix_jobs_owner_type_created", table_name="jobs")
    op.drop_index("ix_queries_owner_created", table_name="queries")
