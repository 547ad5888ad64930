"""repository content indexed by the version that added it: reading what versions after N added (the typosquat
check's names, on every scan) no longer walks all of a repository's rows

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 15:20:00
"""

from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_repository_content_added', 'repository_content', ['repository_id', 'version_added'])


def downgrade() -> None:
    op.drop_index('ix_repository_content_added', table_name='repository_content')
