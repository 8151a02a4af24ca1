"""The exceptions sigstream raises.

Every failure is a ``sigstream.Error``; its subclasses are also the builtin
exception a Python user would expect, so ``except ValueError`` and
``except OSError`` work as usual:

- ``OptionError`` (``ValueError``): an option that is unknown, malformed,
  out of range, or that does not fit the others or the input;
- ``FileError`` (``OSError``): an input that is missing, unreadable or not
  what it claims to be, an output that cannot be written; ``.filename``
  names the file;
- ``GpuError`` (``RuntimeError``): the GPU failed or is missing;
- ``RunError`` (``RuntimeError``): any other failure while running.

``exit_code`` is the code the CLI would exit with (2: bad input, 1: a
failure at run time). The message is the CLI's, without its
``sigstream:`` prefix.
"""


class Error(Exception):
    """Base class of every sigstream error."""

    exit_code = 1


class OptionError(Error, ValueError):
    """An option is unknown, malformed, out of range or does not fit."""

    exit_code = 2


class FileError(Error, OSError):
    """An input or output file is missing, unreadable or malformed."""

    exit_code = 2

    def __init__(self, message):
        # OSError's own constructor would parse (errno, strerror) pairs.
        Exception.__init__(self, message)
        self.message = message

    def __str__(self):
        return self.message


class GpuError(Error, RuntimeError):
    """The GPU failed, or was asked for and is missing."""


class RunError(Error, RuntimeError):
    """A failure while running."""
