"""geometry package (under construction)."""
