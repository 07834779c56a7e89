"""the job queue between executors and workers: jobs gain queue, payload, state and lease; results; process slots

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("queue", sa.Text(), nullable=False, server_default="default"))
        batch_op.add_column(sa.Column("payload", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("state", sa.Text(), nullable=False, server_default="queued"))
        batch_op.add_column(sa.Column("lease_until", sa.Float(), nullable=True))
        batch_op.create_index("ix_jobs_claim", ["queue", "state", "created_at"], unique=False)
    op.create_table(
        "results",
        sa.Column("task_run_id", sa.Text(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("execution_id", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("outputs", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", sa.Float(), nullable=True),
        sa.Column("ended_at", sa.Float(), nullable=True),
        sa.Column("worker", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("task_run_id", "attempt"),
    )
    with op.batch_alter_table("results", schema=None) as batch_op:
        batch_op.create_index("ix_results_execution", ["execution_id"], unique=False)
    with op.batch_alter_table("processes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("slots", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("busy", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("queues", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("processes", schema=None) as batch_op:
        batch_op.drop_column("queues")
        batch_op.drop_column("busy")
        batch_op.drop_column("slots")
    with op.batch_alter_table("results", schema=None) as batch_op:
        batch_op.drop_index("ix_results_execution")
    op.drop_table("results")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_claim")
        batch_op.drop_column("lease_until")
        batch_op.drop_column("state")
        batch_op.drop_column("payload")
        batch_op.drop_column("queue")
