"""The one exception base for bad input: a file, key, item or setting that the user can fix.

Every error the workflow raises about its input derives from `EmergenceError`; the CLI prints exactly
these as one line `error: ...` on stderr (which every rule's log captures) and exits 1. Any other
exception is a bug and keeps its traceback. Each subclass also derives from the built-in error it
used to be (ValueError or RuntimeError), so callers that caught those still do.
"""

from __future__ import annotations


class EmergenceError(Exception):
    """Bad input, reported as one line naming what is wrong."""


class InputError(EmergenceError, ValueError):
    """A value given on the command line or in a results file that cannot be used."""
