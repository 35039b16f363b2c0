"""lcl package (under construction)."""
