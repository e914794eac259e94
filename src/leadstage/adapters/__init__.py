"""Adapters: the I/O side of leadstage (database, files, identity libraries, clock)."""
