"""Byte formats of O/TWAMP-Control and O/TWAMP-Test (layer 1): pure and total."""
