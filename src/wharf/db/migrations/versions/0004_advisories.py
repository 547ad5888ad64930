"""advisories: OSV records, the per-package index, import sources

Revision ID: 0004_advisories
Revises: 0003
Create Date: 2026-11-23 17:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0004_advisories'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'advisories',
        sa.Column('id', sa.String(length=200), nullable=False),
        sa.Column('modified', sa.String(length=64), nullable=False),
        sa.Column('withdrawn', sa.String(length=64), nullable=True),
        sa.Column('summary', sa.Text(), nullable=True),
        sa.Column('score', sa.Float(), nullable=True),
        sa.Column('level', sa.String(length=16), nullable=True),
        sa.Column('record', sa.Text(), nullable=False),
        sa.Column('imported_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_table(
        'advisory_packages',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('ecosystem', sa.String(length=100), nullable=False),
        sa.Column('name', sa.String(length=500), nullable=False),
        sa.Column('advisory_id', sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_advisory_packages_name', 'advisory_packages', ['ecosystem', 'name'], unique=False)
    op.create_index('ix_advisory_packages_advisory', 'advisory_packages', ['advisory_id'], unique=False)
    op.create_table(
        'advisory_sources',
        sa.Column('url', sa.String(length=2000), nullable=False),
        sa.Column('etag', sa.String(length=500), nullable=True),
        sa.Column('last_modified', sa.String(length=100), nullable=True),
        sa.Column('checked_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('imported_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('ok', sa.Boolean(), nullable=False),
        sa.Column('message', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('url'),
    )


def downgrade() -> None:
    op.drop_table('advisory_sources')
    op.drop_index('ix_advisory_packages_advisory', table_name='advisory_packages')
    op.drop_index('ix_advisory_packages_name', table_name='advisory_packages')
    op.drop_table('advisory_packages')
    op.drop_table('advisories')
