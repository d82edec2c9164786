"""The garbage collector around the staff app's start-up.

While the app builds its first screen, automatic collection is off (``StaffApp``): the
collector's passes over everything just imported (a full collection, 25-50 ms, and
middle-generation ones) landed before the first frame. Once the first screen is painted,
:func:`collect_again` freezes what start-up made and turns the collector back on.
"""

from __future__ import annotations

import gc


def collect_again() -> None:
    """Start-up is over: what it made is moved out of the collector's reach for good
    (``gc.freeze``: later full collections scan only what the app makes from now on) and
    the collector runs again. Called more than once, it does nothing more."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()
