"""hosts: where each compute worker serves disks to the hosts they move to

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 23:05:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('host', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('disk_transfer_url', sqlmodel.sql.sqltypes.AutoString(), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table('host', schema=None) as batch_op:
        batch_op.drop_column('disk_transfer_url')
