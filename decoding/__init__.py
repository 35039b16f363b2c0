"""decoding package (under construction)."""
