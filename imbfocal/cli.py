"""What the command-line tools share: argument types that refuse a bad value before any work,
and the check that an output file can be written."""
import argparse
import os
import tempfile
from typing import Callable


def at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer ``>= minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f'must be an integer, got {text!r}') from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f'must be an integer >= {minimum}, got {value}')
        return value

    return parse


def check_output_file(out: str, what: str = 'the file') -> None:
    """Refuse an output path that is a folder, lies in a missing folder, or cannot be written
    there (tried with a temporary file: permission bits say nothing to root).

    Args:
        out: The path the tool will write.
        what: What the tool writes there, for the message.

    Raises:
        IsADirectoryError, FileNotFoundError, PermissionError: Naming ``--out`` and the fix.
    """
    if os.path.isdir(out):
        raise IsADirectoryError(f'--out {out} is a folder; give {what} to write')
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f'--out {out}: the folder {folder} does not exist')
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise PermissionError(f'--out {out}: cannot write in {folder} ({error.strerror})') \
            from None
