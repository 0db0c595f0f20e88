"""server lock: locked, locked_by (owner | admin, as Nova), locked_reason

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("server") as batch:
        batch.add_column(sa.Column("locked", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("locked_by", sa.String(), nullable=True))
        batch.add_column(sa.Column("locked_reason", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("server") as batch:
        batch.drop_column("locked_reason")
        batch.drop_column("locked_by")
        batch.drop_column("locked")
