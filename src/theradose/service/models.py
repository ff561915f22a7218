"""SQLAlchemy 2 models. Times are stored in UTC (timezone-aware on read); activities in MBq, volumes in mL.

The schema is created and changed only by the Alembic migrations in ``theradose/service/migrations``;
a test checks that the migrations produce exactly these tables.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware datetime stored as UTC (naive UTC on SQLite, timestamptz on PostgreSQL)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    #: Comparison key of the name (:func:`theradose.pharmacy.identifiers.identifier_key`): names that read
    #: the same (case, width, invisible characters) collide.
    username_key: Mapped[str] = mapped_column(String(200), unique=True)
    full_name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: Set when an administrator set the password: only a password change is allowed until then.
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class SessionToken(Base):
    __tablename__ = "session_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class AuthFailure(Base):
    """A failed password check (login or signature re-authentication), for throttling and lockout."""

    __tablename__ = "auth_failures"
    __table_args__ = (
        Index("ix_auth_failures_account_key_failed_at", "account_key", "failed_at"),
        Index("ix_auth_failures_client_failed_at", "client", "failed_at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_key: Mapped[str] = mapped_column(String(64))
    client: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(20))
    failed_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Patient(Base):
    __tablename__ = "patients"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pseudonym: Mapped[str] = mapped_column(String(20), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sex: Mapped[str | None] = mapped_column(String(10), nullable=True)
    weight_kg: Mapped[float | None] = mapped_column(Float, nullable=True)


class PatientIdentity(Base):
    """Identity mapping, kept apart from clinical tables; readable only by some roles."""

    __tablename__ = "patient_identities"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), unique=True)
    family_name: Mapped[str] = mapped_column(String(200))
    given_name: Mapped[str] = mapped_column(String(200), default="")
    mrn: Mapped[str] = mapped_column(String(64), unique=True)
    #: Comparison key of the MRN (case, width and invisible characters do not make another MRN).
    mrn_key: Mapped[str] = mapped_column(String(200), unique=True)
    birth_date: Mapped[date | None] = mapped_column(Date, nullable=True)


class Referral(Base):
    __tablename__ = "referrals"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    referring_physician: Mapped[str] = mapped_column(String(200))
    indication: Mapped[str] = mapped_column(String(500))
    pet_result: Mapped[str] = mapped_column(String(20))
    pet_suv_max: Mapped[float | None] = mapped_column(Float, nullable=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(20))


class Prescription(Base):
    """Written directive: ``status`` is ``draft``, ``signed`` or ``cancelled``
    (:mod:`theradose.pharmacy.directives`)."""

    __tablename__ = "prescriptions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    referral_id: Mapped[int | None] = mapped_column(ForeignKey("referrals.id"), nullable=True)
    radiopharmaceutical: Mapped[str] = mapped_column(String(200))
    nuclide: Mapped[str] = mapped_column(String(20))
    prescribed_activity_mbq: Mapped[float] = mapped_column(Float)
    route: Mapped[str] = mapped_column(String(30))
    authorized_user: Mapped[str] = mapped_column(String(64))
    plan_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    cycle: Mapped[int] = mapped_column(Integer)
    written_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(20))
    product_code: Mapped[str | None] = mapped_column(String(40), nullable=True)
    planned_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    range_reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class Delivery(Base):
    __tablename__ = "deliveries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    nuclide: Mapped[str] = mapped_column(String(20))
    supplier: Mapped[str] = mapped_column(String(200))
    lot: Mapped[str] = mapped_column(String(100))
    activity_mbq: Mapped[float] = mapped_column(Float)
    calibration_time: Mapped[datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Generator(Base):
    __tablename__ = "generators"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    serial: Mapped[str] = mapped_column(String(100), unique=True)
    serial_key: Mapped[str] = mapped_column(String(300), unique=True)
    parent: Mapped[str] = mapped_column(String(20))
    daughter: Mapped[str] = mapped_column(String(20))
    parent_activity_mbq: Mapped[float] = mapped_column(Float)
    calibration_time: Mapped[datetime] = mapped_column(UTCDateTime())


class Batch(Base):
    __tablename__ = "batches"
    __table_args__ = (
        UniqueConstraint("product", "lot", name="uq_batches_product_lot"),
        UniqueConstraint("product_key", "lot_key", name="uq_batches_product_key_lot_key"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    product: Mapped[str] = mapped_column(String(200))
    nuclide: Mapped[str] = mapped_column(String(20))
    lot: Mapped[str] = mapped_column(String(100))
    #: Comparison keys (:func:`theradose.pharmacy.identifiers.identifier_key`) of product and lot.
    product_key: Mapped[str] = mapped_column(String(600))
    lot_key: Mapped[str] = mapped_column(String(300))
    activity_mbq: Mapped[float] = mapped_column(Float)
    volume_ml: Mapped[float] = mapped_column(Float)
    reference_time: Mapped[datetime] = mapped_column(UTCDateTime())
    expiry_time: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(20))
    remaining_activity_ref_mbq: Mapped[float] = mapped_column(Float)
    remaining_volume_ml: Mapped[float] = mapped_column(Float)
    delivery_id: Mapped[int | None] = mapped_column(ForeignKey("deliveries.id"), nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    product_code: Mapped[str | None] = mapped_column(String(40), nullable=True)
    carrier_added: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    specification_id: Mapped[int | None] = mapped_column(
        ForeignKey("product_specifications.id"), nullable=True
    )
    status_reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class QcResultRow(Base):
    __tablename__ = "qc_results"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"), index=True)
    test: Mapped[str] = mapped_column(String(100))
    value: Mapped[float] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(30))
    lower_limit: Mapped[float | None] = mapped_column(Float, nullable=True)
    upper_limit: Mapped[float | None] = mapped_column(Float, nullable=True)
    passed: Mapped[bool] = mapped_column(Boolean)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    recorded_by: Mapped[str] = mapped_column(String(64))
    specification_id: Mapped[int | None] = mapped_column(
        ForeignKey("product_specifications.id"), nullable=True
    )


class ProductSpecification(Base):
    """One version of a product's release specification (its tests are :class:`SpecificationTest`)."""

    __tablename__ = "product_specifications"
    __table_args__ = (UniqueConstraint("product_code", "version", name="uq_product_specifications_version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    product_code: Mapped[str] = mapped_column(String(40), index=True)
    version: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    reason: Mapped[str] = mapped_column(Text)


class SpecificationTest(Base):
    __tablename__ = "specification_tests"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    specification_id: Mapped[int] = mapped_column(ForeignKey("product_specifications.id"), index=True)
    test: Mapped[str] = mapped_column(String(100))
    unit: Mapped[str] = mapped_column(String(30))
    lower_limit: Mapped[float | None] = mapped_column(Float, nullable=True)
    upper_limit: Mapped[float | None] = mapped_column(Float, nullable=True)
    citation: Mapped[str] = mapped_column(Text)


class Dispensing(Base):
    __tablename__ = "dispensings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"), index=True)
    prescription_id: Mapped[int] = mapped_column(ForeignKey("prescriptions.id"), index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    volume_ml: Mapped[float] = mapped_column(Float)
    activity_at_draw_mbq: Mapped[float] = mapped_column(Float)
    activity_at_planned_mbq: Mapped[float] = mapped_column(Float)
    activity_ref_mbq: Mapped[float] = mapped_column(Float)
    draw_time: Mapped[datetime] = mapped_column(UTCDateTime())
    planned_time: Mapped[datetime] = mapped_column(UTCDateTime())
    dispensed_by: Mapped[str] = mapped_column(String(64))
    deviation_fraction: Mapped[float] = mapped_column(Float)
    override_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(String(20), default="active")
    product_override_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    calibrator_id: Mapped[int | None] = mapped_column(ForeignKey("calibrators.id"), nullable=True)
    void_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    voided_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Administration(Base):
    __tablename__ = "administrations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dispensing_id: Mapped[int] = mapped_column(ForeignKey("dispensings.id"), unique=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    syringe_activity_mbq: Mapped[float] = mapped_column(Float)
    syringe_measured_at: Mapped[datetime] = mapped_column(UTCDateTime())
    residual_activity_mbq: Mapped[float | None] = mapped_column(Float, nullable=True)
    residual_measured_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    injection_time: Mapped[datetime] = mapped_column(UTCDateTime())
    route: Mapped[str] = mapped_column(String(30))
    net_activity_mbq: Mapped[float] = mapped_column(Float)
    deviation_fraction: Mapped[float] = mapped_column(Float)
    within_limits: Mapped[bool] = mapped_column(Boolean)
    event_uid: Mapped[str] = mapped_column(String(64), unique=True)
    administered_by: Mapped[str] = mapped_column(String(64))
    calibrator_id: Mapped[int | None] = mapped_column(ForeignKey("calibrators.id"), nullable=True)
    identifiers_confirmed: Mapped[str | None] = mapped_column(String(100), nullable=True)
    deviation_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    medical_event_possible: Mapped[bool] = mapped_column(Boolean, default=False)
    medical_event_criteria: Mapped[str | None] = mapped_column(Text, nullable=True)


class ImportedAdministration(Base):
    """An administration read from an RRDSR written by another system (injector, scanner)."""

    __tablename__ = "imported_administrations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sop_instance_uid: Mapped[str] = mapped_column(String(64), unique=True)
    event_uid: Mapped[str | None] = mapped_column(String(64), nullable=True)
    patient_ref: Mapped[str] = mapped_column(String(64))
    radiopharmaceutical: Mapped[str] = mapped_column(String(200))
    radionuclide: Mapped[str] = mapped_column(String(64))
    administered_activity_mbq: Mapped[float] = mapped_column(Float)
    start_time: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    route: Mapped[str | None] = mapped_column(String(100), nullable=True)
    pre_activity_mbq: Mapped[float | None] = mapped_column(Float, nullable=True)
    post_activity_mbq: Mapped[float | None] = mapped_column(Float, nullable=True)
    device: Mapped[str | None] = mapped_column(String(200), nullable=True)
    imported_by: Mapped[str] = mapped_column(String(64))
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Calibrator(Base):
    __tablename__ = "calibrators"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    name_key: Mapped[str] = mapped_column(String(300), unique=True)
    manufacturer: Mapped[str] = mapped_column(String(200), default="")
    model: Mapped[str] = mapped_column(String(200), default="")
    serial: Mapped[str] = mapped_column(String(100), default="")
    tolerance_fraction: Mapped[float] = mapped_column(Float)


class CalibratorQa(Base):
    __tablename__ = "calibrator_qa"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    calibrator_id: Mapped[int] = mapped_column(ForeignKey("calibrators.id"), index=True)
    test: Mapped[str] = mapped_column(String(20))
    performed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    passed: Mapped[bool] = mapped_column(Boolean)
    max_abs_deviation: Mapped[float] = mapped_column(Float)
    tolerance_fraction: Mapped[float] = mapped_column(Float)
    data_json: Mapped[str] = mapped_column(Text)
    performed_by: Mapped[str] = mapped_column(String(64))
    voided: Mapped[bool] = mapped_column(Boolean, default=False)
    void_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    voided_by: Mapped[str | None] = mapped_column(String(64), nullable=True)


class CameraCalibrationRow(Base):
    __tablename__ = "camera_calibrations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    camera: Mapped[str] = mapped_column(String(100), index=True)
    nuclide: Mapped[str] = mapped_column(String(20))
    sensitivity_cps_per_mbq: Mapped[float] = mapped_column(Float)
    performed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    recovery_json: Mapped[str] = mapped_column(Text)
    performed_by: Mapped[str] = mapped_column(String(64))


class LabRecord(Base):
    """A laboratory value or graded symptom of a patient, stored in its canonical unit with its CTCAE grade
    (:mod:`theradose.safety`); the value and unit as entered are kept beside it."""

    __tablename__ = "lab_records"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    taken_on: Mapped[date] = mapped_column(Date)
    test: Mapped[str] = mapped_column(String(32))
    value: Mapped[float] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(32))
    entered_value: Mapped[float] = mapped_column(Float)
    entered_unit: Mapped[str] = mapped_column(String(32))
    baseline: Mapped[float | None] = mapped_column(Float, nullable=True)
    lln: Mapped[float | None] = mapped_column(Float, nullable=True)
    uln: Mapped[float | None] = mapped_column(Float, nullable=True)
    cycle: Mapped[int | None] = mapped_column(Integer, nullable=True)
    grade: Mapped[int] = mapped_column(Integer)
    rule: Mapped[str] = mapped_column(Text)
    recorded_by: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PrecycleDecisionRow(Base):
    """The pre-cycle decision (go, delay, reduce, stop) of a patient's cycle from the laboratory rules of
    :mod:`theradose.safety`; the newest row of a (patient, cycle) is the one in force. A physician may
    override a delay or stop with a reason and an e-signature."""

    __tablename__ = "precycle_decisions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    cycle: Mapped[int] = mapped_column(Integer)
    rules: Mapped[str] = mapped_column(String(40))
    decision: Mapped[str] = mapped_column(String(10))
    activity_factor: Mapped[float] = mapped_column(Float)
    reasons_json: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(Text)
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_by: Mapped[str] = mapped_column(String(64))
    override_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    overridden_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    overridden_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class IdempotencyKey(Base):
    """A write already done under an ``Idempotency-Key`` (API) or a form token (pages): a repeat of the
    same request returns the stored answer instead of writing again."""

    __tablename__ = "idempotency_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    operation: Mapped[str] = mapped_column(String(60))
    request_hash: Mapped[str] = mapped_column(String(64))
    response_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class WasteContainer(Base):
    """A radioactive-waste container held for decay-in-storage (10 CFR 35.92)."""

    __tablename__ = "waste_containers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    label: Mapped[str] = mapped_column(String(100), unique=True)
    nuclides: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    opened_by: Mapped[str] = mapped_column(String(64))
    sealed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    sealed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    surveyed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    surface_usv_h: Mapped[float | None] = mapped_column(Float, nullable=True)
    background_usv_h: Mapped[float | None] = mapped_column(Float, nullable=True)
    instrument: Mapped[str | None] = mapped_column(String(200), nullable=True)
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    released_by: Mapped[str | None] = mapped_column(String(64), nullable=True)


class DirectivePlan(Base):
    """The next-cycle plan a draft written directive was drafted from (:mod:`theradose.planning.draft`):
    the dosimetry reviews planned from, the recommended activity, the earliest date and the organ that
    limits the activity with its projected cumulative BED and dose, expected and at ``confidence``."""

    __tablename__ = "directive_plans"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    prescription_id: Mapped[int] = mapped_column(ForeignKey("prescriptions.id"), unique=True)
    reviews_json: Mapped[str] = mapped_column(Text)
    protocol: Mapped[str] = mapped_column(String(40))
    recommended_activity_mbq: Mapped[float] = mapped_column(Float)
    earliest_date: Mapped[date] = mapped_column(Date)
    organ: Mapped[str | None] = mapped_column(String(64), nullable=True)
    limited_by: Mapped[str] = mapped_column(String(10))
    binding_limit: Mapped[str | None] = mapped_column(String(100), nullable=True)
    projected_bed_gy: Mapped[float | None] = mapped_column(Float, nullable=True)
    projected_bed_upper_gy: Mapped[float | None] = mapped_column(Float, nullable=True)
    projected_dose_gy: Mapped[float | None] = mapped_column(Float, nullable=True)
    projected_dose_upper_gy: Mapped[float | None] = mapped_column(Float, nullable=True)
    confidence: Mapped[float] = mapped_column(Float)
    plan_json: Mapped[str] = mapped_column(Text)
    drafted_by: Mapped[str] = mapped_column(String(64))
    drafted_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AuditEntryRow(Base):
    """Append-only audit chain; ``at`` is kept as the exact hashed text; ``key_id`` names the sealing key
    (``None``: an unkeyed entry from before keyed sealing)."""

    __tablename__ = "audit_entries"
    __table_args__ = (Index("ix_audit_entries_entity_entity_id", "entity", "entity_id"),)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    actor: Mapped[str] = mapped_column(String(64))
    at: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(20))
    entity: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[str] = mapped_column(String(64))
    before_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    after_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str | None] = mapped_column(String(32), nullable=True)


class AuditHead(Base):
    """Single row (id 1): the last sequence number and hash, sealed (``mac``) with key ``key_id``; also
    the writers' lock row."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    mac: Mapped[str | None] = mapped_column(String(64), nullable=True)


class SignatureRow(Base):
    __tablename__ = "signatures"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    record_type: Mapped[str] = mapped_column(String(40))
    record_id: Mapped[str] = mapped_column(String(64))
    signer: Mapped[str] = mapped_column(String(64))
    signer_name: Mapped[str] = mapped_column(String(200))
    meaning: Mapped[str] = mapped_column(String(20))
    signed_at: Mapped[str] = mapped_column(String(32))
    record_hash: Mapped[str] = mapped_column(String(64))
    seal: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str | None] = mapped_column(String(32), nullable=True)


def row_to_dict(row: Any) -> dict[str, Any]:
    """Column values of ``row`` as a JSON-able dict (datetimes as canonical UTC text)."""
    from theradose.pharmacy.audit import format_time

    out: dict[str, Any] = {}
    for column in row.__table__.columns:
        value = getattr(row, column.key)
        if isinstance(value, datetime):
            value = format_time(value)
        elif isinstance(value, date):
            value = value.isoformat()
        out[column.key] = value
    return out
