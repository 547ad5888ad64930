"""background tasks, the event stream, scan results

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 17:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'tasks',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=100), nullable=False),
        sa.Column('payload', sa.JSON(), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('max_attempts', sa.Integer(), nullable=False),
        sa.Column('backoff', sa.Float(), nullable=False),
        sa.Column('run_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
        sa.Column('dedupe_key', sa.String(length=300), nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_tasks_due', 'tasks', ['state', 'run_at'])
    op.create_index('ix_tasks_dedupe', 'tasks', ['dedupe_key'])
    op.create_table(
        'events',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('type', sa.String(length=64), nullable=False),
        sa.Column('repository', sa.String(length=100), nullable=True),
        sa.Column('format', sa.String(length=32), nullable=True),
        sa.Column('package', sa.String(length=255), nullable=True),
        sa.Column('version', sa.String(length=255), nullable=True),
        sa.Column('actor', sa.String(length=200), nullable=True),
        sa.Column('files', sa.JSON(), nullable=False),
        sa.Column('detail', sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_events_at', 'events', ['at'])
    op.create_index('ix_events_type', 'events', ['type'])
    op.create_index('ix_events_repository', 'events', ['repository'])
    op.create_table(
        'scan_results',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('repository_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.Column('version', sa.String(length=255), nullable=False),
        sa.Column('analyzer', sa.String(length=64), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('summary', sa.JSON(), nullable=False),
        sa.Column('findings', sa.JSON(), nullable=False),
        sa.Column('digest', sa.String(length=64), nullable=False),
        sa.Column('scanned_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['repository_id'], ['repositories.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('repository_id', 'name', 'version', 'analyzer', name='uq_scan_results_identity'),
    )


def downgrade() -> None:
    op.drop_table('scan_results')
    op.drop_index('ix_events_repository', table_name='events')
    op.drop_index('ix_events_type', table_name='events')
    op.drop_index('ix_events_at', table_name='events')
    op.drop_table('events')
    op.drop_index('ix_tasks_dedupe', table_name='tasks')
    op.drop_index('ix_tasks_due', table_name='tasks')
    op.drop_table('tasks')
