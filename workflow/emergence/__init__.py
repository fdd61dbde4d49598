"""Emergence Lab: emergent abilities of language models, measured as one Snakemake workflow."""

__version__ = "0.1.0"
