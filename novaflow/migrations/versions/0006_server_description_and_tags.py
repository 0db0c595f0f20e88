"""server description (Nova 2.19), hostname (2.3) and server tags (Nova 2.26)

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("server") as batch:
        batch.add_column(sa.Column("description", sa.String(), nullable=True))
        batch.add_column(sa.Column("hostname", sa.String(), nullable=True))
    op.create_table(
        "servertag",
        sa.Column("server_id", sa.String(), nullable=False),
        sa.Column("tag", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("server_id", "tag"),
    )


def downgrade() -> None:
    op.drop_table("servertag")
    with op.batch_alter_table("server") as batch:
        batch.drop_column("hostname")
        batch.drop_column("description")
