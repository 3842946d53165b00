"""Exceptions the package raises for problems a user can fix.

Each message names the file (and line, where there is one) and says what to
do; catching :class:`D2LNLIError` catches them all.
"""

__all__ = ['D2LNLIError', 'DataFormatError', 'DownloadError', 'CheckpointError',
           'TrainingDivergedError', 'DamagedCheckpointError']


class D2LNLIError(Exception):
    """Base class of the package's user-facing errors."""


class DataFormatError(D2LNLIError, ValueError):
    """A data file is missing, empty or malformed (the message names file and line)."""


class DownloadError(D2LNLIError, RuntimeError):
    """No mirror delivered a verified archive (the message lists what was tried)."""


class CheckpointError(D2LNLIError, ValueError):
    """A saved model folder is missing, damaged or does not fit (the message says which file)."""


class TrainingDivergedError(D2LNLIError, FloatingPointError):
    """A training loss became NaN or infinite; the message names the last good checkpoint."""


class DamagedCheckpointError(CheckpointError):
    """A training-checkpoint folder that cannot be read (an older one may still be good)."""
