"""Results: per-packet records, metrics and reports (layer 7)."""
