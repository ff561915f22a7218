"""Written directives: their status and signature model, and the plausibility of the prescribed activity.

A directive is written as a ``draft`` (by a physician, or later drafted from the next-cycle plan), is
``signed`` when an authorized user (role physician) signs it with the meaning ``approved`` (10 CFR
35.40(a): dated and signed by an authorized user before the administration), and may be ``cancelled``
with a reason. Editing a signed directive returns it to ``draft``: the content changed, so the
signature no longer matches and the directive must be signed again. Only a signed directive whose
signature still matches its content can be dispensed or administered.

The prescribed activity is compared with the protocol's labelled range (``data/protocols``): outside
it the directive needs a documented reason (e.g. a dosimetry-driven institutional protocol), and more
than :data:`IMPLAUSIBLE_FACTOR` times the maximum is refused as a probable unit slip.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from theradose.planning.protocols import Protocol

DirectiveStatus = Literal["draft", "signed", "cancelled"]
DIRECTIVE_STATUSES: tuple[str, ...] = get_args(DirectiveStatus)
#: The signature meaning that makes a directive ``signed``, and the role that may give it.
SIGNATURE_MEANING = "approved"
SIGNING_ROLE = "physician"
#: An activity above this multiple of the protocol's maximum is refused (e.g. 74 GBq typed for 7.4 GBq).
IMPLAUSIBLE_FACTOR = 2.0


@dataclass(frozen=True)
class Plausibility:
    """The prescribed activity against the protocol's range.

    ``within_range``: inside [min, max]; ``implausible``: above ``IMPLAUSIBLE_FACTOR`` × max (refused);
    ``message``: one line naming the value, the range and its source.
    """

    within_range: bool
    implausible: bool
    min_mbq: float
    max_mbq: float
    message: str


def check_plausibility(activity_mbq: float, protocol: Protocol) -> Plausibility:
    """Compare ``activity_mbq`` with ``protocol.activity`` (min and max per cycle)."""
    low, high = protocol.min_activity_mbq.value, protocol.max_activity_mbq.value
    within = low <= activity_mbq <= high
    implausible = activity_mbq > IMPLAUSIBLE_FACTOR * high
    if within:
        message = f"{activity_mbq:g} MBq is within the {protocol.name} range {low:g}-{high:g} MBq"
    elif implausible:
        message = (
            f"prescribed_activity_mbq {activity_mbq:g} MBq is more than {IMPLAUSIBLE_FACTOR:g} x the "
            f"{protocol.name} maximum of {high:g} MBq: check the unit (MBq, not kBq or GBq x 1000)"
        )
    else:
        message = (
            f"prescribed_activity_mbq {activity_mbq:g} MBq is outside the {protocol.name} range "
            f"{low:g}-{high:g} MBq ({protocol.max_activity_mbq.citation}): give range_reason to prescribe it"
        )
    return Plausibility(within, implausible, low, high, message)


def not_dispensable_reason(status: str, *, signature_valid: bool) -> str | None:
    """Why a directive in ``status`` cannot be dispensed or administered (None when it can)."""
    if status == "cancelled":
        return "the written directive is cancelled"
    if status != "signed":
        return "the written directive is not signed: a physician must sign it (approved) first"
    if not signature_valid:
        return "the written directive's signature does not match its content: sign it again"
    return None
