"""How a job can end other than by finishing: the exceptions the CLI turns into exit codes.

Standard library only, so that the CLI can catch them without importing Ray (``--help`` and
``status`` answer before Ray, torch and the engine load).
"""

from __future__ import annotations


class ShardFailed(RuntimeError):
    """A shard could not be built or run; carries the actor-side traceback."""


class JobInterrupted(RuntimeError):
    """The job was interrupted (Ctrl-C, SIGTERM); the archive is valid and ``resume`` continues it.

    ``exit_code``: 130 for Ctrl-C, 143 for SIGTERM (128 + the signal, as shells report it).
    """

    def __init__(self, message: str, exit_code: int = 130) -> None:
        super().__init__(message)
        self.exit_code = exit_code
