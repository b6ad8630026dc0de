"""The one base class of user mistakes.

`UserError` is what a command prints as one line (`error: ...`) before it exits with status 2: a config that
cannot be used, data that cannot be trained on, a checkpoint that cannot be read or does not fit, a folder in
use by another run. Every message names the file or key and says what to do. Anything else is a bug and keeps
its traceback.
"""

from __future__ import annotations


class UserError(RuntimeError):
    """A mistake the user can fix; the message names the file/key and the fix (exit status 2)."""
