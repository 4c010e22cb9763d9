"""What the Snakemake rule modules need, importable and unit-tested: ``plan.py``."""
