"""Radiopharmacy and bedside workflow: signed directives, product specifications, one dose per directive,
bedside identity and deviation records, pre-cycle decisions, waste containers, idempotency keys.

Existing written directives with status ``active`` become ``signed`` when a physician's ``approved``
signature is on them, else ``draft`` (they must be signed before they can be dispensed). Product codes
are filled in from the product registry where the stored name is one of its names. Version 1 of each
product's release specification is seeded from ``data/products/specifications.toml``.

Revision ID: web_0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "web_0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _backfill(bind: sa.Connection) -> None:
    from theradose.products import find_product

    for table in ("prescriptions", "batches"):
        column = "radiopharmaceutical" if table == "prescriptions" else "product"
        for row_id, name in bind.execute(sa.text(f"SELECT id, {column} FROM {table}")).all():
            product = find_product(name)
            if product is not None:
                bind.execute(
                    sa.text(f"UPDATE {table} SET product_code = :code WHERE id = :id"),
                    {"code": product.code, "id": row_id},
                )
    signed = {
        int(r)
        for (r,) in bind.execute(
            sa.text(
                "SELECT s.record_id FROM signatures s JOIN users u ON u.username = s.signer "
                "WHERE s.record_type = 'prescription' AND s.meaning = 'approved' AND u.role = 'physician'"
            )
        )
    }
    for row_id, status in bind.execute(sa.text("SELECT id, status FROM prescriptions")).all():
        if status == "active":
            new = "signed" if row_id in signed else "draft"
            bind.execute(
                sa.text("UPDATE prescriptions SET status = :s WHERE id = :id"), {"s": new, "id": row_id}
            )


def upgrade() -> None:
    op.create_table(
        "product_specifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("product_code", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_product_specifications")),
        sa.UniqueConstraint("product_code", "version", name="uq_product_specifications_version"),
    )
    with op.batch_alter_table("product_specifications") as batch_op:
        batch_op.create_index(
            batch_op.f("ix_product_specifications_product_code"), ["product_code"], unique=False
        )
    op.create_table(
        "specification_tests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("specification_id", sa.Integer(), nullable=False),
        sa.Column("test", sa.String(length=100), nullable=False),
        sa.Column("unit", sa.String(length=30), nullable=False),
        sa.Column("lower_limit", sa.Float(), nullable=True),
        sa.Column("upper_limit", sa.Float(), nullable=True),
        sa.Column("citation", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["specification_id"],
            ["product_specifications.id"],
            name=op.f("fk_specification_tests_specification_id_product_specifications"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_specification_tests")),
    )
    with op.batch_alter_table("specification_tests") as batch_op:
        batch_op.create_index(
            batch_op.f("ix_specification_tests_specification_id"), ["specification_id"], unique=False
        )
    op.create_table(
        "precycle_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("cycle", sa.Integer(), nullable=False),
        sa.Column("rules", sa.String(length=40), nullable=False),
        sa.Column("decision", sa.String(length=10), nullable=False),
        sa.Column("activity_factor", sa.Float(), nullable=False),
        sa.Column("reasons_json", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=False),
        sa.Column("override_reason", sa.Text(), nullable=True),
        sa.Column("overridden_by", sa.String(length=64), nullable=True),
        sa.Column("overridden_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_precycle_decisions_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_precycle_decisions")),
    )
    with op.batch_alter_table("precycle_decisions") as batch_op:
        batch_op.create_index(batch_op.f("ix_precycle_decisions_patient_id"), ["patient_id"], unique=False)
    op.create_table(
        "idempotency_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("operation", sa.String(length=60), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("response_json", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_idempotency_keys_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_keys")),
        sa.UniqueConstraint("key", name=op.f("uq_idempotency_keys_key")),
    )
    op.create_table(
        "waste_containers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("nuclides", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("opened_by", sa.String(length=64), nullable=False),
        sa.Column("sealed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sealed_by", sa.String(length=64), nullable=True),
        sa.Column("surveyed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("surface_usv_h", sa.Float(), nullable=True),
        sa.Column("background_usv_h", sa.Float(), nullable=True),
        sa.Column("instrument", sa.String(length=200), nullable=True),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("released_by", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_waste_containers")),
        sa.UniqueConstraint("label", name=op.f("uq_waste_containers_label")),
    )
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(
            sa.Column("must_change_password", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("session_tokens") as batch_op:
        batch_op.add_column(sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("patients") as batch_op:
        batch_op.add_column(sa.Column("sex", sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column("weight_kg", sa.Float(), nullable=True))
    with op.batch_alter_table("prescriptions") as batch_op:
        batch_op.add_column(sa.Column("product_code", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("planned_date", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("range_reason", sa.Text(), nullable=True))
    with op.batch_alter_table("batches") as batch_op:
        batch_op.add_column(sa.Column("product_code", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("carrier_added", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("specification_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("status_reason", sa.Text(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_batches_specification_id_product_specifications"),
            "product_specifications",
            ["specification_id"],
            ["id"],
        )
    with op.batch_alter_table("qc_results") as batch_op:
        batch_op.add_column(sa.Column("specification_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_qc_results_specification_id_product_specifications"),
            "product_specifications",
            ["specification_id"],
            ["id"],
        )
    with op.batch_alter_table("dispensings") as batch_op:
        batch_op.add_column(
            sa.Column("status", sa.String(length=20), nullable=False, server_default="active")
        )
        batch_op.add_column(sa.Column("product_override_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("calibrator_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("void_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("voided_by", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("voided_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_dispensings_calibrator_id_calibrators"), "calibrators", ["calibrator_id"], ["id"]
        )
    with op.batch_alter_table("administrations") as batch_op:
        batch_op.alter_column("residual_activity_mbq", existing_type=sa.Float(), nullable=True)
        batch_op.alter_column("residual_measured_at", existing_type=sa.DateTime(timezone=True), nullable=True)
        batch_op.add_column(sa.Column("calibrator_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("identifiers_confirmed", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("deviation_reason", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("medical_event_possible", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("medical_event_criteria", sa.Text(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_administrations_calibrator_id_calibrators"),
            "calibrators",
            ["calibrator_id"],
            ["id"],
        )
    with op.batch_alter_table("calibrator_qa") as batch_op:
        batch_op.add_column(sa.Column("voided", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("void_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("voided_by", sa.String(length=64), nullable=True))
    bind = op.get_bind()
    _backfill(bind)


def downgrade() -> None:
    with op.batch_alter_table("calibrator_qa") as batch_op:
        for name in ("voided_by", "void_reason", "voided"):
            batch_op.drop_column(name)
    with op.batch_alter_table("administrations") as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_administrations_calibrator_id_calibrators"), type_="foreignkey"
        )
        for name in (
            "medical_event_criteria",
            "medical_event_possible",
            "deviation_reason",
            "identifiers_confirmed",
            "calibrator_id",
        ):
            batch_op.drop_column(name)
    with op.batch_alter_table("dispensings") as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_dispensings_calibrator_id_calibrators"), type_="foreignkey")
        for name in (
            "voided_at",
            "voided_by",
            "void_reason",
            "calibrator_id",
            "product_override_reason",
            "status",
        ):
            batch_op.drop_column(name)
    with op.batch_alter_table("qc_results") as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_qc_results_specification_id_product_specifications"), type_="foreignkey"
        )
        batch_op.drop_column("specification_id")
    with op.batch_alter_table("batches") as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_batches_specification_id_product_specifications"), type_="foreignkey"
        )
        for name in ("status_reason", "specification_id", "carrier_added", "product_code"):
            batch_op.drop_column(name)
    with op.batch_alter_table("prescriptions") as batch_op:
        for name in ("range_reason", "planned_date", "product_code"):
            batch_op.drop_column(name)
    with op.batch_alter_table("patients") as batch_op:
        batch_op.drop_column("weight_kg")
        batch_op.drop_column("sex")
    with op.batch_alter_table("session_tokens") as batch_op:
        batch_op.drop_column("last_used_at")
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_column("must_change_password")
    for table in ("waste_containers", "idempotency_keys", "precycle_decisions", "specification_tests"):
        op.drop_table(table)
    op.drop_table("product_specifications")
