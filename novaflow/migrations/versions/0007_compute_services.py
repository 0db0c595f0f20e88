"""compute services: integer ids for os-services before 2.53, and forced_down on hosts

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 17:16:17.971954
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('computeservice',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('host', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.ForeignKeyConstraint(['host'], ['host.name'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('host'),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('host', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('forced_down', sa.Boolean(), nullable=False, server_default=sa.false())
        )
    # Hosts registered before this revision get their ids in the order they first registered.
    op.execute(
        "INSERT INTO computeservice (host) SELECT name FROM host ORDER BY created_at, name"
    )


def downgrade() -> None:
    with op.batch_alter_table('host', schema=None) as batch_op:
        batch_op.drop_column('forced_down')

    op.drop_table('computeservice')
