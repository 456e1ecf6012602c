"""The files ``observatory plugin new NAME`` writes (``core.commands.plugin``), under ``files/``.

Each ``*.tmpl`` is copied without its suffix, with ``{{name}}`` (the plugin's name),
``{{module}}`` (its Python package), ``{{dist}}`` (its distribution), ``{{engine_dist}}``,
``{{engine_version}}`` and ``{{settings_inline}}`` (the settings schema on one line) replaced;
a ``MODULE`` folder takes the package's name.
"""
