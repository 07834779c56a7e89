"""the encrypted secret store; typed KV values

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "secrets",
        sa.Column("namespace", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("namespace", "name"),
    )
    with op.batch_alter_table("kv", schema=None) as batch_op:
        batch_op.add_column(sa.Column("type", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("kv", schema=None) as batch_op:
        batch_op.drop_column("type")
    op.drop_table("secrets")
