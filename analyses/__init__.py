"""analyses package (under construction)."""
