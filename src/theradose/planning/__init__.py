"""Dosimetry-modulated therapy planning.

- :mod:`~theradose.planning.protocols`: treatment protocols (activity range, schedule, organ limits,
  tumour targets), shipped as cited TOML files or written by the user.
- :mod:`~theradose.planning.cycles`: cycle history from a plan file or pipeline ``doses.json``.
- :mod:`~theradose.planning.nextcycle`: cumulative dose/BED, next-cycle activity, stop rules.
- :mod:`~theradose.planning.regulatory`: written directive, dosage check, medical events (rules as data).
- :mod:`~theradose.planning.release`: patient release (NUREG-1556 Vol. 9 Appendix U) and restrictions.
- :mod:`~theradose.planning.plot`: cumulative BED per organ across cycles against its limit.
"""

from theradose.planning.cycles import (
    Cycle,
    RegionDose,
    TreatmentPlan,
    cycle_doses,
    load_plan,
    parse_plan,
    read_doses_json,
)
from theradose.planning.nextcycle import (
    Expected,
    NextCycleResult,
    OrganProjection,
    TumourProjection,
    expected_gy_per_gbq,
    one_sided_z,
    plan_next_cycle,
)
from theradose.planning.protocols import (
    Cited,
    OrganLimit,
    Protocol,
    TumourTarget,
    available_protocols,
    load_protocol,
    parse_protocol,
)

__all__ = [
    "Cited",
    "Cycle",
    "Expected",
    "NextCycleResult",
    "OrganLimit",
    "OrganProjection",
    "Protocol",
    "RegionDose",
    "TreatmentPlan",
    "TumourProjection",
    "TumourTarget",
    "available_protocols",
    "cycle_doses",
    "expected_gy_per_gbq",
    "load_plan",
    "load_protocol",
    "one_sided_z",
    "parse_plan",
    "parse_protocol",
    "plan_next_cycle",
    "read_doses_json",
]
