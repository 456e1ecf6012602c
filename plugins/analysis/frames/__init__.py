"""A project's data as pandas DataFrames, local or remote, cached (``Observatory``)."""

from plugins.analysis.frames.observatory import FilterError, Observatory

__all__ = ["FilterError", "Observatory"]
