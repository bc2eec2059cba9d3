"""How many examples a property-based (Hypothesis) test runs.

Every run of the suite runs a quarter of a test's thorough count (at least 50 examples), so
the property suites stay a few seconds of the suite; ``HYPOTHESIS_PROFILE=thorough`` runs the
full count, for a deeper search after touching the policy engines, the loader or the export
(decision 0082). A failure Hypothesis finds is kept in ``.hypothesis/`` and tried first on the
next run either way.
"""

from __future__ import annotations

import os

THOROUGH = "thorough"
EVERY_RUN_SHARE = 4  # every run tries 1/4 of the thorough count
EVERY_RUN_FLOOR = 50


def examples(thorough: int) -> int:
    """``max_examples`` for a test whose thorough search is ``thorough`` examples."""
    if os.environ.get("HYPOTHESIS_PROFILE", "") == THOROUGH:
        return thorough
    return min(thorough, max(EVERY_RUN_FLOOR, thorough // EVERY_RUN_SHARE))
