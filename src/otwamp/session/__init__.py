"""TWAMP-Test session engines (layer 5): sans-I/O sender, reflector and schedules."""
