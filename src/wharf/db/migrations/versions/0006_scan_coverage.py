"""scan results record the files they covered (a file added to a version after its scan shows as not scanned)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 04:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('scan_results') as batch:
        batch.add_column(sa.Column('files', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('scan_results') as batch:
        batch.drop_column('files')
