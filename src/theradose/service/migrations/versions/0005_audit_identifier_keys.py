"""Comparison keys for identifiers that must be unique (Unicode NFKC + case folding).

``batches.product_key``/``lot_key`` (unique together), ``patient_identities.mrn_key``,
``generators.serial_key`` and ``calibrators.name_key`` hold
:func:`theradose.pharmacy.identifiers.identifier_key` of the value as entered, so that lots, MRNs,
serials and names that differ only in case, width or invisible characters are one identifier. Existing
rows get their keys here; two existing rows that collide stop the upgrade with both values named.

Revision ID: audit_0004
Revises: audit_0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from theradose.pharmacy.identifiers import identifier_key

revision = "audit_0004"
down_revision = "audit_0003"
branch_labels = None
depends_on = None

#: table → (key column, source columns, key length, unique constraint name)
KEYS: dict[str, list[tuple[str, str, int]]] = {
    "batches": [("product_key", "product", 600), ("lot_key", "lot", 300)],
    "patient_identities": [("mrn_key", "mrn", 200)],
    "generators": [("serial_key", "serial", 300)],
    "calibrators": [("name_key", "name", 300)],
}


def _fill(table: str, columns: list[tuple[str, str, int]]) -> None:
    bind = op.get_bind()
    sources = [source for _key, source, _n in columns]
    rows = bind.execute(sa.text(f"SELECT id, {', '.join(sources)} FROM {table}")).all()
    seen: dict[tuple[str, ...], tuple[str, ...]] = {}
    for row in rows:
        values = tuple(str(v) for v in row[1:])
        keys = tuple(identifier_key(v) for v in values)
        if keys in seen:
            raise RuntimeError(
                f"{table}: {seen[keys]!r} and {values!r} differ only in case, width or invisible characters: "
                "rename one of them before upgrading"
            )
        seen[keys] = values
        assignments = ", ".join(f"{key} = :k{i}" for i, (key, _s, _n) in enumerate(columns))
        bind.execute(
            sa.text(f"UPDATE {table} SET {assignments} WHERE id = :id"),
            {"id": row[0], **{f"k{i}": k for i, k in enumerate(keys)}},
        )


def upgrade() -> None:
    for table, columns in KEYS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for key, _source, length in columns:
                batch_op.add_column(sa.Column(key, sa.String(length=length), nullable=True))
        _fill(table, columns)
        with op.batch_alter_table(table, schema=None) as batch_op:
            for key, _source, length in columns:
                batch_op.alter_column(key, existing_type=sa.String(length=length), nullable=False)
            names = [key for key, _s, _n in columns]
            batch_op.create_unique_constraint(f"uq_{table}_{'_'.join(names)}", names)


def downgrade() -> None:
    for table, columns in KEYS.items():
        names = [key for key, _s, _n in columns]
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(f"uq_{table}_{'_'.join(names)}", type_="unique")
            for key in names:
                batch_op.drop_column(key)
