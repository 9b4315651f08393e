"""Report rendering: the run folder's index.html (and, later, LaTeX tables)."""
