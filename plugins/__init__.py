"""Built-in services, loaded through the ``observatory`` entry-point group like any other."""
