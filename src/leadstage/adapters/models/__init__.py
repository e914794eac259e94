"""Data files shipped with leadstage (the default scoring model)."""
