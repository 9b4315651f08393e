"""Figures are bytes of the seed alone: the same rows give the same SVG and PDF however the
figure was built (the SVG's element ids hash a salt that matplotlib reads at save time)."""
import hashlib

from reports.figures import forest, save

ROWS = [{"model": m, "method": method, "region": "target", "mean": mean, "ci_low": lo,
         "ci_high": hi}
        for m in ("a", "b") for method, mean, lo, hi in (("x", "0.5", "0.4", "0.6"),
                                                         ("random", "0.3", "0.2", "0.4"))]


def test_a_figure_saved_twice_has_the_same_bytes(tmp_path):
    digests = set()
    for i in range(2):
        save(forest("deletion_auc", ROWS), tmp_path / str(i), "f")
        digests.add(tuple(hashlib.sha256((tmp_path / str(i) / "figures" / f"f.{fmt}")
                                         .read_bytes()).hexdigest() for fmt in ("svg", "pdf")))
    assert len(digests) == 1
