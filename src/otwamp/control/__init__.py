"""Sans-I/O O/TWAMP-Control machines (layer 4): bytes and events in, bytes and events out."""
