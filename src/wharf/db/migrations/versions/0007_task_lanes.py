"""tasks carry a lane: CPU-heavy kinds (scans) are run by the server's task helper process, not its request process

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 07:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('tasks') as batch:
        batch.add_column(sa.Column('lane', sa.Integer(), nullable=False, server_default='0'))
        batch.create_index('ix_tasks_lane_due', ['state', 'lane', 'run_at'])
    # work of the helper's kinds queued before the upgrade goes to the helper like new work
    op.execute("UPDATE tasks SET lane = 1 WHERE kind IN ('scan', 'advisories.import', 'advisories.rescan')")


def downgrade() -> None:
    with op.batch_alter_table('tasks') as batch:
        batch.drop_index('ix_tasks_lane_due')
        batch.drop_column('lane')
