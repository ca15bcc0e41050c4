"""The ``handrail`` command: check, explain and test policies from a shell.

It imports the library; the library never imports it.
"""

from ._main import main

__all__ = ["main"]
