"""The engine's own behaviour, written as default plugins (always on, like datasette's)."""
