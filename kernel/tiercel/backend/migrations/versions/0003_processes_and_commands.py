"""names that say what things are: workers -> processes (with kind and version), events -> commands

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.rename_table("workers", "processes")
    with op.batch_alter_table("processes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", sa.Text(), nullable=False, server_default="server"))
        batch_op.add_column(sa.Column("version", sa.Text(), nullable=True))
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_execution")
    op.rename_table("events", "commands")
    with op.batch_alter_table("commands", schema=None) as batch_op:
        batch_op.create_index("ix_commands_execution", ["execution_id"], unique=False)
    with op.batch_alter_table("executions", schema=None) as batch_op:
        batch_op.create_index("ix_executions_owner", ["owner"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("executions", schema=None) as batch_op:
        batch_op.drop_index("ix_executions_owner")
    with op.batch_alter_table("commands", schema=None) as batch_op:
        batch_op.drop_index("ix_commands_execution")
    op.rename_table("commands", "events")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index("ix_events_execution", ["execution_id"], unique=False)
    with op.batch_alter_table("processes", schema=None) as batch_op:
        batch_op.drop_column("version")
        batch_op.drop_column("kind")
    op.rename_table("processes", "workers")
