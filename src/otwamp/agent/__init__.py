"""``otwamp agent``: serve, measure a mesh on a schedule, archive and export (docs/AGENT.md)."""
