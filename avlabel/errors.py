"""The one exception type for expected user errors.

Core functions raise :class:`AvlabelError` with a message that names the problem *and* the fix
("unknown label set 'kinetic400'; choose one of ..."). The CLI prints it on one line and exits
with status 2, without a traceback. Internal invariants use ``assert`` instead.
"""


class AvlabelError(Exception):
    """An error caused by the user's input, with an actionable one-line message."""
