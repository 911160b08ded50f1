"""Identity rules of the profile updater: who may absorb whose history, and who was erased.

* Two identified users are never merged: an id that already has a profile with a ``userId`` is
  never absorbed by another profile (``identify``, ``alias`` or any event with both ids).
* An anonymous (or aliased) id is claimed once: by the first profile that links it. A later
  claim by another user is refused, whatever partition it came from; two workers claiming the
  same id at once both write its claim document, MongoDB aborts one of the transactions with a
  write conflict, and its retry sees the other's link.
* A profile absorbs at most ``LUMEN_PROFILES_MAX_ANONYMOUS_IDS`` ids.
* Erased ids (the user's id and every id linked to it) are kept, as keyed hashes only, in
  ``erased_ids``: a later event keyed by one of them is dropped, and none of them is linked again.

A refused link does not stop the event: it is applied to its own key, without the merge, and
the refusal is counted in ``lumen_profiles_identity_refused_total{reason}``.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta

# Collections.
ERASED_IDS = "erased_ids"  # {_id: hashed id, erasedAt}: the suppression list
IDENTITY_CLAIMS = "identity_claims"  # {_id: hashed id, expiresAt}: write-conflict guard

# Refusal reasons (the label of lumen_profiles_identity_refused_total).
IDENTIFIED = "identified"  # the id is another identified user's
CLAIMED = "claimed"  # the id is linked to another profile already
TOO_MANY = "anonymous_ids"  # the profile is at its anonymous-id cap
ERASED = "erased"  # the id was erased
REASONS = (IDENTIFIED, CLAIMED, TOO_MANY, ERASED)

# A claim document only has to outlive the transactions that could race with it.
CLAIM_TTL = timedelta(days=1)


def hashed_id(key: bytes, value: str) -> str:
    """The keyed hash under which an id is remembered (128 bits, hex)."""
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:32]


def claim_expiry(now: datetime) -> datetime:
    return now + CLAIM_TTL
