"""qthumb's media side: fetch, probe, decode, compose, store. Runs in worker processes."""
