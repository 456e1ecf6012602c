"""The staff console under ``/console``: one module per area, each with its own ``router``."""
