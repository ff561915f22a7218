"""Traceability domain logic for the radiopharmacy (pure: no database, no web).

Batches and QC release, dispensing with decay correction, administration (net activity), written
directives, referrals, deliveries and generators, dose-calibrator QA, SPECT/CT calibrations, pseudonyms,
the SHA-256 audit chain and electronic signatures. The service package stores these and exposes them.
"""

from __future__ import annotations

from theradose.pharmacy.administration import ROUTES, AdministrationResult, net_administered_activity
from theradose.pharmacy.audit import AuditEntry, ChainVerification, canonical_json, new_entry, verify_chain
from theradose.pharmacy.batches import Batch, QcResult, ReleaseDecision, release_decision
from theradose.pharmacy.dispensing import BatchStock, DispenseResult, dispense
from theradose.pharmacy.regulatory import DosageCheck, check_dosage

__all__ = [
    "ROUTES",
    "AdministrationResult",
    "AuditEntry",
    "Batch",
    "BatchStock",
    "ChainVerification",
    "DispenseResult",
    "DosageCheck",
    "QcResult",
    "ReleaseDecision",
    "canonical_json",
    "check_dosage",
    "dispense",
    "net_administered_activity",
    "new_entry",
    "release_decision",
    "verify_chain",
]
