"""The next-cycle plan a draft written directive was drafted from.

Revision ID: loop_0003
Revises: audit_0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "loop_0003"
down_revision = "audit_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "directive_plans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("prescription_id", sa.Integer(), nullable=False),
        sa.Column("reviews_json", sa.Text(), nullable=False),
        sa.Column("protocol", sa.String(length=40), nullable=False),
        sa.Column("recommended_activity_mbq", sa.Float(), nullable=False),
        sa.Column("earliest_date", sa.Date(), nullable=False),
        sa.Column("organ", sa.String(length=64), nullable=True),
        sa.Column("limited_by", sa.String(length=10), nullable=False),
        sa.Column("binding_limit", sa.String(length=100), nullable=True),
        sa.Column("projected_bed_gy", sa.Float(), nullable=True),
        sa.Column("projected_bed_upper_gy", sa.Float(), nullable=True),
        sa.Column("projected_dose_gy", sa.Float(), nullable=True),
        sa.Column("projected_dose_upper_gy", sa.Float(), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("plan_json", sa.Text(), nullable=False),
        sa.Column("drafted_by", sa.String(length=64), nullable=False),
        sa.Column("drafted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["prescription_id"],
            ["prescriptions.id"],
            name=op.f("fk_directive_plans_prescription_id_prescriptions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_directive_plans")),
        sa.UniqueConstraint("prescription_id", name=op.f("uq_directive_plans_prescription_id")),
    )


def downgrade() -> None:
    op.drop_table("directive_plans")
