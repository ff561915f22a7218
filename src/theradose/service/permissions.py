"""Roles and what each may do. Every endpoint except ``/health`` and ``/auth/login`` names one permission.

The table is the single source of truth: endpoints check it, the role tests are generated from it.
"""

from __future__ import annotations

from typing import Literal, get_args

Role = Literal["admin", "physicist", "physician", "pharmacist", "technologist"]
ROLES: tuple[str, ...] = get_args(Role)

CLINICAL: frozenset[str] = frozenset({"physicist", "physician", "pharmacist", "technologist"})

#: permission → roles allowed.
PERMISSIONS: dict[str, frozenset[str]] = {
    "self": frozenset(ROLES),
    "users:manage": frozenset({"admin"}),
    "patients:read": CLINICAL,
    "patients:create": frozenset({"physician", "pharmacist", "technologist"}),
    "identity:read": frozenset({"physician", "pharmacist", "technologist"}),
    "referrals:read": CLINICAL,
    "referrals:write": frozenset({"physician"}),
    "prescriptions:read": CLINICAL,
    "prescriptions:write": frozenset({"physician"}),
    "deliveries:read": CLINICAL,
    "deliveries:write": frozenset({"pharmacist"}),
    "batches:read": CLINICAL,
    "batches:write": frozenset({"pharmacist"}),
    "dispense": frozenset({"pharmacist"}),
    "administer": frozenset({"technologist", "physician"}),
    "administrations:read": CLINICAL,
    "rrdsr:import": frozenset({"technologist", "physicist"}),
    "dosimetry:read": CLINICAL,
    "dosimetry:import": frozenset({"physicist"}),
    "calibrators:read": CLINICAL,
    "calibrators:write": frozenset({"physicist"}),
    "calibrator_qa:write": frozenset({"physicist", "technologist", "pharmacist"}),
    "cameras:read": CLINICAL,
    "cameras:write": frozenset({"physicist"}),
    "labs:read": CLINICAL,
    "labs:write": frozenset({"physician", "technologist"}),
    "audit:read": frozenset({"admin", "physicist"}),
    "signatures:read": CLINICAL | {"admin"},
    "sign": CLINICAL,
    "specifications:write": frozenset({"pharmacist"}),
    "waste:read": CLINICAL,
    "waste:write": frozenset({"physicist", "pharmacist"}),
    "precycle:override": frozenset({"physician"}),
}

#: Signature meaning → roles that may sign with that meaning (checked in addition to ``sign``).
SIGNATURE_MEANING_ROLES: dict[str, frozenset[str]] = {
    "prepared": frozenset({"pharmacist"}),
    "checked": frozenset({"pharmacist", "physicist"}),
    "approved": frozenset({"physician", "pharmacist"}),
    "administered": frozenset({"technologist", "physician"}),
    # given by specific actions (release a batch, void a record, override a pre-cycle decision), not by
    # the generic signing endpoint
    "released": frozenset({"pharmacist"}),
    "voided": frozenset({"pharmacist", "physician", "physicist", "technologist"}),
    "overridden": frozenset({"physician"}),
}


#: Permissions of browser pages that have no JSON endpoint (yet): permission → roles allowed.
PAGE_PERMISSIONS: dict[str, frozenset[str]] = {}


def allowed(role: str, permission: str) -> bool:
    """True when ``role`` holds ``permission`` (API table, then the pages' own)."""
    roles = PERMISSIONS.get(permission)
    if roles is None:
        roles = PAGE_PERMISSIONS[permission]
    return role in roles
