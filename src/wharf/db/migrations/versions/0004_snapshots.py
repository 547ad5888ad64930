"""named snapshots of repository versions

Revision ID: 0004_snapshots
Revises: 0003
Create Date: 2026-11-23 17:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0004_snapshots'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'snapshots',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('repository_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('description', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_by', sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(['repository_id'], ['repositories.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('repository_id', 'name', name='uq_snapshots_repository_name'),
    )
    # retention and rollback read a repository's versions by number and time
    op.create_index('ix_repository_content_removed', 'repository_content', ['repository_id', 'version_removed'])


def downgrade() -> None:
    op.drop_index('ix_repository_content_removed', table_name='repository_content')
    op.drop_table('snapshots')
