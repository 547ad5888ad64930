"""artifact identity includes name and version; package attributes

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 15:10:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

# 0001 created the artifacts unique constraint without a name: this convention names it for batch mode (SQLite);
# PostgreSQL gave it its default name.
_CONVENTION = {"uq": "uq_%(table_name)s_%(column_0_N_name)s"}


def _drop_old_unique(batch_op) -> None:
    if op.get_bind().dialect.name == "postgresql":
        batch_op.drop_constraint("artifacts_format_filename_sha256_key", type_="unique")
    else:
        batch_op.drop_constraint("uq_artifacts_format_filename_sha256", type_="unique")


def upgrade() -> None:
    with op.batch_alter_table('artifacts', schema=None, naming_convention=_CONVENTION) as batch_op:
        _drop_old_unique(batch_op)
        batch_op.create_unique_constraint('uq_artifacts_identity', ['format', 'name', 'version', 'filename', 'sha256'])

    op.create_table('package_attributes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('repository_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('attr', sa.String(length=200), nullable=False),
    sa.Column('value', sa.JSON(), nullable=True),
    sa.Column('version_added', sa.Integer(), nullable=False),
    sa.Column('version_removed', sa.Integer(), nullable=True),
    sa.Column('changed_by', sa.String(length=200), nullable=True),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['repository_id'], ['repositories.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('package_attributes', schema=None) as batch_op:
        batch_op.create_index('ix_package_attributes_name', ['repository_id', 'name', 'version_removed'], unique=False)
        batch_op.create_index('uq_package_attributes_live', ['repository_id', 'name', 'attr'], unique=True,
                              sqlite_where=sa.text('version_removed IS NULL'),
                              postgresql_where=sa.text('version_removed IS NULL'))


def downgrade() -> None:
    with op.batch_alter_table('package_attributes', schema=None) as batch_op:
        batch_op.drop_index('uq_package_attributes_live', sqlite_where=sa.text('version_removed IS NULL'),
                            postgresql_where=sa.text('version_removed IS NULL'))
        batch_op.drop_index('ix_package_attributes_name')
    op.drop_table('package_attributes')
    with op.batch_alter_table('artifacts', schema=None) as batch_op:
        batch_op.drop_constraint('uq_artifacts_identity', type_='unique')
        batch_op.create_unique_constraint('artifacts_format_filename_sha256_key', ['format', 'filename', 'sha256'])
