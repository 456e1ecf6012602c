"""The public map under ``/map``: one module per area, each with its own ``router``."""
