"""Small helpers shared by the blocks (filled in by the core work)."""
