"""Use cases of product release specifications: the QC tests and limits a batch is graded against.

Specifications are versioned per product: a new version is written by a pharmacist with a reason and
never edited; a batch is graded against the version in force when it was received. Version 1 of each
product is seeded by the migration from ``data/products/specifications.toml``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from theradose.pharmacy.batches import QcResult
from theradose.products import get_product
from theradose.service import audit_store
from theradose.service.auth import Principal
from theradose.service.errors import conflict
from theradose.service.models import ProductSpecification, SpecificationTest, row_to_dict
from theradose.service.operations.common import Finite, Model, opt_text, text, utcnow


class SpecTestIn(Model):
    test: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[a-z][a-z0-9_]*$")]
    unit: opt_text(30) = ""  # type: ignore[valid-type]
    lower_limit: Finite | None = None
    upper_limit: Finite | None = None
    citation: text(500)  # type: ignore[valid-type]


class SpecificationIn(Model):
    product: text(200)  # type: ignore[valid-type]
    tests: Annotated[list[SpecTestIn], Field(min_length=1, max_length=30)]
    reason: text(500)  # type: ignore[valid-type]


class SpecTestOut(BaseModel):
    test: str
    unit: str
    lower_limit: float | None
    upper_limit: float | None
    citation: str


class SpecificationOut(BaseModel):
    id: int
    product_code: str
    version: int
    created_by: str
    created_at: datetime
    reason: str
    tests: list[SpecTestOut]


def specification_out(session: Session, row: ProductSpecification) -> SpecificationOut:
    """A specification with its tests."""
    tests = session.execute(
        select(SpecificationTest)
        .where(SpecificationTest.specification_id == row.id)
        .order_by(SpecificationTest.id)
    ).scalars()
    return SpecificationOut(
        **{k: v for k, v in row_to_dict(row).items()},
        tests=[
            SpecTestOut(
                test=t.test,
                unit=t.unit,
                lower_limit=t.lower_limit,
                upper_limit=t.upper_limit,
                citation=t.citation,
            )
            for t in tests
        ],
    )


def current_specification(session: Session, product_code: str) -> ProductSpecification | None:
    """The newest version of a product's specification, or None."""
    return session.execute(
        select(ProductSpecification)
        .where(ProductSpecification.product_code == product_code)
        .order_by(ProductSpecification.version.desc())
        .limit(1)
    ).scalar_one_or_none()


def spec_tests(session: Session, specification_id: int) -> dict[str, SpecificationTest]:
    """The tests of a specification by name."""
    rows = session.execute(
        select(SpecificationTest).where(SpecificationTest.specification_id == specification_id)
    ).scalars()
    return {t.test: t for t in rows}


def list_specifications(session: Session, me: Principal) -> list[SpecificationOut]:
    """Every version of every product's specification, newest first per product."""
    rows = session.execute(
        select(ProductSpecification).order_by(
            ProductSpecification.product_code, ProductSpecification.version.desc()
        )
    ).scalars()
    return [specification_out(session, r) for r in rows]


def create_specification(session: Session, me: Principal, body: SpecificationIn) -> SpecificationOut:
    """Write the next version of a product's specification."""
    product = get_product(body.product)
    names = [t.test for t in body.tests]
    if len(set(names)) != len(names):
        raise conflict("duplicate_test", "each test may appear once in a specification", "tests")
    for t in body.tests:
        QcResult(t.test, 0.0, t.unit, t.lower_limit, t.upper_limit)  # limits present and ordered
    version = 1 + int(
        session.execute(
            select(func.coalesce(func.max(ProductSpecification.version), 0)).where(
                ProductSpecification.product_code == product.code
            )
        ).scalar_one()
    )
    row = ProductSpecification(
        product_code=product.code,
        version=version,
        created_by=me.username,
        created_at=utcnow(),
        reason=body.reason,
    )
    session.add(row)
    session.flush()
    for t in body.tests:
        session.add(SpecificationTest(specification_id=row.id, **t.model_dump()))
    session.flush()
    out = specification_out(session, row)
    audit_store.append(
        session,
        actor=me.username,
        at=utcnow(),
        action="create",
        entity="product_specification",
        entity_id=row.id,
        after=out.model_dump(mode="json"),
        reason=body.reason,
    )
    return out


def seed_specifications(session: Session) -> list[SpecificationOut]:
    """Write each specification of ``data/products/specifications.toml`` that the database lacks (by product
    and version), through the audit chain as the application writes any record (actor ``system``).

    Run by the app factory at start-up, after the migrations: rows written by a migration would have no
    audit entry and the state verification would report them as written outside the application.
    """
    import tomllib
    from importlib import resources

    text_ = (resources.files("theradose.data") / "products" / "specifications.toml").read_text(
        encoding="utf-8"
    )
    written = []
    for spec in tomllib.loads(text_)["specifications"]:
        product = get_product(spec["product"])
        exists = session.execute(
            select(ProductSpecification.id).where(
                ProductSpecification.product_code == product.code,
                ProductSpecification.version == int(spec["version"]),
            )
        ).first()
        if exists is not None:
            continue
        row = ProductSpecification(
            product_code=product.code,
            version=int(spec["version"]),
            created_by="system",
            created_at=utcnow(),
            reason="seeded from data/products/specifications.toml",
        )
        session.add(row)
        session.flush()
        for t in spec["tests"]:
            session.add(
                SpecificationTest(
                    specification_id=row.id,
                    test=t["test"],
                    unit=t["unit"],
                    lower_limit=t.get("lower_limit"),
                    upper_limit=t.get("upper_limit"),
                    citation=t["citation"],
                )
            )
        session.flush()
        out = specification_out(session, row)
        audit_store.append(
            session,
            actor="system",
            at=utcnow(),
            action="create",
            entity="product_specification",
            entity_id=row.id,
            after=out.model_dump(mode="json"),
            reason=row.reason,
        )
        written.append(out)
    return written
