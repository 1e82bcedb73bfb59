"""Sampling: loading a generator from a checkpoint, the critic as a judge, and the samplers (drs, refine).

No torch here: `gantool --help` imports nothing below this package."""
