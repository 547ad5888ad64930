"""one head again after the feature areas' migrations (snapshots, promotion, policy, hooks, advisories)

Revision ID: 0005
Revises: 0004_advisories, 0004_hooks, 0004_policy, 0004_promotion, 0004_snapshots
Create Date: 2026-11-23 18:45:00
"""

revision = '0005'
down_revision = ('0004_advisories', '0004_hooks', '0004_policy', '0004_promotion', '0004_snapshots')
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
