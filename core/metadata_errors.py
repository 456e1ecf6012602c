"""The one error of the metadata cleaners (``core.metadata``, ``core.metadata_isobmff``)."""

from __future__ import annotations


class NotStrippable(ValueError):
    """The file cannot be made sure to be free of location and personal metadata: its type has
    no cleaner, or its structure could not be followed to the end. It is not served publicly."""
