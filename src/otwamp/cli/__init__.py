"""The ``otwamp`` command line (layer 8)."""
