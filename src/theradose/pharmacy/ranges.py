"""Physical ranges of the values the traceability records accept.

Values outside them are typing or unit errors, refused with a message naming the field (a batch of
5e-324 MBq, a time in the year 1 or 9999). The service's request types and the domain checks use the
same constants.
"""

from __future__ import annotations

from datetime import UTC, datetime

#: Smallest activity a record may hold, in MBq: 1 kBq, the resolution of clinical dose calibrators
#: (readings are shown to 0.001 MBq; AAPM TG-181, Carey et al., Med Phys 39:6394, 2012).
MIN_ACTIVITY_MBQ = 1e-3
#: Largest activity a record may hold, in MBq: 1 TBq, above any radiopharmacy batch (a ¹⁷⁷Lu production
#: batch is tens of GBq; a ⁶⁸Ge/⁶⁸Ga generator holds a few GBq).
MAX_ACTIVITY_MBQ = 1e6
#: Earliest time a record may carry (before it, a date is a typing error).
EARLIEST_TIME = datetime(1970, 1, 1, tzinfo=UTC)
#: First time a record may no longer carry.
LATEST_TIME = datetime(2200, 1, 1, tzinfo=UTC)
