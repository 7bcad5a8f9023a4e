"""The child side of a run: ``python -m tunixrt_jupyter.worker RUN_DIR``.

``main.run_worker`` drives the whole flow (slot, platform, dry-run or Tunix training,
final status); ``training`` holds everything that imports JAX/Tunix, so the dry-run path
and the "Tunix is not installed" path never import them.
"""
