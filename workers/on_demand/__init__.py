"""Frames on demand: the frame server each API process starts, and the source cache it reads."""
