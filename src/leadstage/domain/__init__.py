"""The pure core of leadstage: standard library only, no I/O, no clock, no randomness."""
