"""vqa-xai-bench: an explainability benchmark for vision-language models (``python -m benchmark``).

Importing the package readies LAVIS for the ``transformers`` the suite runs
(:mod:`benchmark.core.lavis_compat`), before anything can import it.
"""
from benchmark.core import lavis_compat

lavis_compat.install()
