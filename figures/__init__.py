"""Every figure of the toolkit, from one command: ``python -m figures --out DIR``."""
