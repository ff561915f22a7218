"""Initial schema: users, patients, pharmacy records, QA, audit chain, signatures.

Revision ID: 0001
Revises:
Create Date: 2026-11-22 04:37:42.550305
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_entries",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("at", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("entity", sa.String(length=40), nullable=False),
        sa.Column("entity_id", sa.String(length=64), nullable=False),
        sa.Column("before_json", sa.Text(), nullable=True),
        sa.Column("after_json", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_entries")),
    )
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )
    op.create_table(
        "calibrators",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("manufacturer", sa.String(length=200), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("serial", sa.String(length=100), nullable=False),
        sa.Column("tolerance_fraction", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calibrators")),
        sa.UniqueConstraint("name", name=op.f("uq_calibrators_name")),
    )
    op.create_table(
        "camera_calibrations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("camera", sa.String(length=100), nullable=False),
        sa.Column("nuclide", sa.String(length=20), nullable=False),
        sa.Column("sensitivity_cps_per_mbq", sa.Float(), nullable=False),
        sa.Column("performed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recovery_json", sa.Text(), nullable=False),
        sa.Column("performed_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_camera_calibrations")),
    )
    with op.batch_alter_table("camera_calibrations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_camera_calibrations_camera"), ["camera"], unique=False)

    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("nuclide", sa.String(length=20), nullable=False),
        sa.Column("supplier", sa.String(length=200), nullable=False),
        sa.Column("lot", sa.String(length=100), nullable=False),
        sa.Column("activity_mbq", sa.Float(), nullable=False),
        sa.Column("calibration_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
    )
    op.create_table(
        "generators",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("serial", sa.String(length=100), nullable=False),
        sa.Column("parent", sa.String(length=20), nullable=False),
        sa.Column("daughter", sa.String(length=20), nullable=False),
        sa.Column("parent_activity_mbq", sa.Float(), nullable=False),
        sa.Column("calibration_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_generators")),
        sa.UniqueConstraint("serial", name=op.f("uq_generators_serial")),
    )
    op.create_table(
        "imported_administrations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sop_instance_uid", sa.String(length=64), nullable=False),
        sa.Column("event_uid", sa.String(length=64), nullable=True),
        sa.Column("patient_ref", sa.String(length=64), nullable=False),
        sa.Column("radiopharmaceutical", sa.String(length=200), nullable=False),
        sa.Column("radionuclide", sa.String(length=64), nullable=False),
        sa.Column("administered_activity_mbq", sa.Float(), nullable=False),
        sa.Column("start_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("route", sa.String(length=100), nullable=True),
        sa.Column("pre_activity_mbq", sa.Float(), nullable=True),
        sa.Column("post_activity_mbq", sa.Float(), nullable=True),
        sa.Column("device", sa.String(length=200), nullable=True),
        sa.Column("imported_by", sa.String(length=64), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_imported_administrations")),
        sa.UniqueConstraint("sop_instance_uid", name=op.f("uq_imported_administrations_sop_instance_uid")),
    )
    op.create_table(
        "patients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pseudonym", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patients")),
        sa.UniqueConstraint("pseudonym", name=op.f("uq_patients_pseudonym")),
    )
    op.create_table(
        "server_secret",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("secret_hex", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_server_secret")),
    )
    op.create_table(
        "signatures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("record_type", sa.String(length=40), nullable=False),
        sa.Column("record_id", sa.String(length=64), nullable=False),
        sa.Column("signer", sa.String(length=64), nullable=False),
        sa.Column("signer_name", sa.String(length=200), nullable=False),
        sa.Column("meaning", sa.String(length=20), nullable=False),
        sa.Column("signed_at", sa.String(length=32), nullable=False),
        sa.Column("record_hash", sa.String(length=64), nullable=False),
        sa.Column("seal", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signatures")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("full_name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "batches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("product", sa.String(length=200), nullable=False),
        sa.Column("nuclide", sa.String(length=20), nullable=False),
        sa.Column("lot", sa.String(length=100), nullable=False),
        sa.Column("activity_mbq", sa.Float(), nullable=False),
        sa.Column("volume_ml", sa.Float(), nullable=False),
        sa.Column("reference_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expiry_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("remaining_activity_ref_mbq", sa.Float(), nullable=False),
        sa.Column("remaining_volume_ml", sa.Float(), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"], ["deliveries.id"], name=op.f("fk_batches_delivery_id_deliveries")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batches")),
        sa.UniqueConstraint("product", "lot", name="uq_batches_product_lot"),
    )
    op.create_table(
        "calibrator_qa",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("calibrator_id", sa.Integer(), nullable=False),
        sa.Column("test", sa.String(length=20), nullable=False),
        sa.Column("performed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("max_abs_deviation", sa.Float(), nullable=False),
        sa.Column("tolerance_fraction", sa.Float(), nullable=False),
        sa.Column("data_json", sa.Text(), nullable=False),
        sa.Column("performed_by", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["calibrator_id"], ["calibrators.id"], name=op.f("fk_calibrator_qa_calibrator_id_calibrators")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calibrator_qa")),
    )
    with op.batch_alter_table("calibrator_qa", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_calibrator_qa_calibrator_id"), ["calibrator_id"], unique=False)

    op.create_table(
        "patient_identities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("family_name", sa.String(length=200), nullable=False),
        sa.Column("given_name", sa.String(length=200), nullable=False),
        sa.Column("mrn", sa.String(length=64), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_patient_identities_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patient_identities")),
        sa.UniqueConstraint("mrn", name=op.f("uq_patient_identities_mrn")),
        sa.UniqueConstraint("patient_id", name=op.f("uq_patient_identities_patient_id")),
    )
    op.create_table(
        "referrals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("referring_physician", sa.String(length=200), nullable=False),
        sa.Column("indication", sa.String(length=500), nullable=False),
        sa.Column("pet_result", sa.String(length=20), nullable=False),
        sa.Column("pet_suv_max", sa.Float(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_referrals_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referrals")),
    )
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_referrals_patient_id"), ["patient_id"], unique=False)

    op.create_table(
        "session_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_session_tokens_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_session_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_session_tokens_token_hash")),
    )
    with op.batch_alter_table("session_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_session_tokens_user_id"), ["user_id"], unique=False)

    op.create_table(
        "prescriptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("referral_id", sa.Integer(), nullable=True),
        sa.Column("radiopharmaceutical", sa.String(length=200), nullable=False),
        sa.Column("nuclide", sa.String(length=20), nullable=False),
        sa.Column("prescribed_activity_mbq", sa.Float(), nullable=False),
        sa.Column("route", sa.String(length=30), nullable=False),
        sa.Column("authorized_user", sa.String(length=64), nullable=False),
        sa.Column("plan_id", sa.String(length=100), nullable=True),
        sa.Column("cycle", sa.Integer(), nullable=False),
        sa.Column("written_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_prescriptions_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["referral_id"], ["referrals.id"], name=op.f("fk_prescriptions_referral_id_referrals")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prescriptions")),
    )
    with op.batch_alter_table("prescriptions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_prescriptions_patient_id"), ["patient_id"], unique=False)

    op.create_table(
        "qc_results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("test", sa.String(length=100), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("unit", sa.String(length=30), nullable=False),
        sa.Column("lower_limit", sa.Float(), nullable=True),
        sa.Column("upper_limit", sa.Float(), nullable=True),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["batch_id"], ["batches.id"], name=op.f("fk_qc_results_batch_id_batches")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qc_results")),
    )
    with op.batch_alter_table("qc_results", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_qc_results_batch_id"), ["batch_id"], unique=False)

    op.create_table(
        "dispensings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("prescription_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("volume_ml", sa.Float(), nullable=False),
        sa.Column("activity_at_draw_mbq", sa.Float(), nullable=False),
        sa.Column("activity_at_planned_mbq", sa.Float(), nullable=False),
        sa.Column("activity_ref_mbq", sa.Float(), nullable=False),
        sa.Column("draw_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("planned_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("dispensed_by", sa.String(length=64), nullable=False),
        sa.Column("deviation_fraction", sa.Float(), nullable=False),
        sa.Column("override_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["batch_id"], ["batches.id"], name=op.f("fk_dispensings_batch_id_batches")),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_dispensings_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["prescription_id"],
            ["prescriptions.id"],
            name=op.f("fk_dispensings_prescription_id_prescriptions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dispensings")),
    )
    with op.batch_alter_table("dispensings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dispensings_batch_id"), ["batch_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_dispensings_patient_id"), ["patient_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_dispensings_prescription_id"), ["prescription_id"], unique=False)

    op.create_table(
        "administrations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dispensing_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("syringe_activity_mbq", sa.Float(), nullable=False),
        sa.Column("syringe_measured_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("residual_activity_mbq", sa.Float(), nullable=False),
        sa.Column("residual_measured_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("injection_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("route", sa.String(length=30), nullable=False),
        sa.Column("net_activity_mbq", sa.Float(), nullable=False),
        sa.Column("deviation_fraction", sa.Float(), nullable=False),
        sa.Column("within_limits", sa.Boolean(), nullable=False),
        sa.Column("event_uid", sa.String(length=64), nullable=False),
        sa.Column("administered_by", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["dispensing_id"], ["dispensings.id"], name=op.f("fk_administrations_dispensing_id_dispensings")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_administrations_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_administrations")),
        sa.UniqueConstraint("dispensing_id", name=op.f("uq_administrations_dispensing_id")),
        sa.UniqueConstraint("event_uid", name=op.f("uq_administrations_event_uid")),
    )
    with op.batch_alter_table("administrations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_administrations_patient_id"), ["patient_id"], unique=False)
    audit_head = sa.table(
        "audit_head", sa.column("id", sa.Integer), sa.column("seq", sa.Integer), sa.column("hash", sa.String)
    )
    op.bulk_insert(audit_head, [{"id": 1, "seq": 0, "hash": "0" * 64}])
    server_secret = sa.table("server_secret", sa.column("id", sa.Integer), sa.column("secret_hex", sa.String))
    op.bulk_insert(server_secret, [{"id": 1, "secret_hex": secrets.token_hex(32)}])


def downgrade() -> None:
    with op.batch_alter_table("administrations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_administrations_patient_id"))

    op.drop_table("administrations")
    with op.batch_alter_table("dispensings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dispensings_prescription_id"))
        batch_op.drop_index(batch_op.f("ix_dispensings_patient_id"))
        batch_op.drop_index(batch_op.f("ix_dispensings_batch_id"))

    op.drop_table("dispensings")
    with op.batch_alter_table("qc_results", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_qc_results_batch_id"))

    op.drop_table("qc_results")
    with op.batch_alter_table("prescriptions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_prescriptions_patient_id"))

    op.drop_table("prescriptions")
    with op.batch_alter_table("session_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_session_tokens_user_id"))

    op.drop_table("session_tokens")
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_referrals_patient_id"))

    op.drop_table("referrals")
    op.drop_table("patient_identities")
    with op.batch_alter_table("calibrator_qa", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_calibrator_qa_calibrator_id"))

    op.drop_table("calibrator_qa")
    op.drop_table("batches")
    op.drop_table("users")
    op.drop_table("signatures")
    op.drop_table("server_secret")
    op.drop_table("patients")
    op.drop_table("imported_administrations")
    op.drop_table("generators")
    op.drop_table("deliveries")
    with op.batch_alter_table("camera_calibrations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_camera_calibrations_camera"))

    op.drop_table("camera_calibrations")
    op.drop_table("calibrators")
    op.drop_table("audit_head")
    op.drop_table("audit_entries")
