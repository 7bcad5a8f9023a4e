"""Model, tokenizer and dataset builders for the worker.

``tokenizers`` and ``datasets`` are plain Python + NumPy so a dry-run can validate data
without JAX; ``models`` imports Tunix only inside the functions that build a model.
"""
