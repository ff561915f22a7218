"""Keyed audit chain, sealed head and signatures with key ids; forced password change; login failures.

* ``audit_entries.key_id``, ``audit_head.key_id`` and ``audit_head.mac``, ``signatures.key_id``: the id of
  the key (kept outside the database) that sealed each value. Rows written before this revision keep
  ``NULL``: their entries stay verifiable as an unkeyed SHA-256 prefix of the chain, anchored by the
  first keyed entry, and their signatures count as valid only while the (verified) audit trail records
  them.
* ``server_secret`` is dropped: a key stored in the database it protects seals nothing.
* ``users.username_key``: the Unicode comparison key of the name (NFKC + case folding), unique, so that
  names differing only in case, width or invisible characters are one account.
* ``auth_failures``: failed password checks by account name and client address, for throttling.
* An index on ``audit_entries (entity, entity_id)`` for the state verification and record histories.

Revision ID: audit_0003
Revises: web_0003
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

from theradose.pharmacy.identifiers import identifier_key

revision = "audit_0003"
down_revision = "web_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("key_id", sa.String(length=32), nullable=True))
        batch_op.create_index("ix_audit_entries_entity_entity_id", ["entity", "entity_id"], unique=False)
    with op.batch_alter_table("audit_head", schema=None) as batch_op:
        batch_op.add_column(sa.Column("key_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("mac", sa.String(length=64), nullable=True))
    with op.batch_alter_table("signatures", schema=None) as batch_op:
        batch_op.add_column(sa.Column("key_id", sa.String(length=32), nullable=True))
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("username_key", sa.String(length=200), nullable=True))
    users = sa.table("users", sa.column("id", sa.Integer), sa.column("username", sa.String))
    bind = op.get_bind()
    seen: dict[str, str] = {}
    for user_id, username in bind.execute(sa.select(users.c.id, users.c.username)).all():
        key = identifier_key(username)
        if key in seen:
            raise RuntimeError(
                f"users {seen[key]!r} and {username!r} differ only in case, width or invisible characters: "
                "rename one of them before upgrading"
            )
        seen[key] = username
        bind.execute(
            sa.text("UPDATE users SET username_key = :key WHERE id = :id"), {"key": key, "id": user_id}
        )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.alter_column("username_key", existing_type=sa.String(length=200), nullable=False)
        batch_op.create_unique_constraint(op.f("uq_users_username_key"), ["username_key"])
    op.create_table(
        "auth_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_key", sa.String(length=64), nullable=False),
        sa.Column("client", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auth_failures")),
    )
    with op.batch_alter_table("auth_failures", schema=None) as batch_op:
        batch_op.create_index(
            "ix_auth_failures_account_key_failed_at", ["account_key", "failed_at"], unique=False
        )
        batch_op.create_index("ix_auth_failures_client_failed_at", ["client", "failed_at"], unique=False)
    op.drop_table("server_secret")


def downgrade() -> None:
    op.create_table(
        "server_secret",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("secret_hex", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_server_secret")),
    )
    server_secret = sa.table("server_secret", sa.column("id", sa.Integer), sa.column("secret_hex", sa.String))
    op.bulk_insert(server_secret, [{"id": 1, "secret_hex": secrets.token_hex(32)}])
    with op.batch_alter_table("auth_failures", schema=None) as batch_op:
        batch_op.drop_index("ix_auth_failures_client_failed_at")
        batch_op.drop_index("ix_auth_failures_account_key_failed_at")
    op.drop_table("auth_failures")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("uq_users_username_key"), type_="unique")
        batch_op.drop_column("username_key")
    with op.batch_alter_table("signatures", schema=None) as batch_op:
        batch_op.drop_column("key_id")
    with op.batch_alter_table("audit_head", schema=None) as batch_op:
        batch_op.drop_column("mac")
        batch_op.drop_column("key_id")
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_entries_entity_entity_id")
        batch_op.drop_column("key_id")
