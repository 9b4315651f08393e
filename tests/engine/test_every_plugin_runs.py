"""Every registered method and metric runs end to end on the fused primary model (one question):
a new plugin is covered here without touching the golden numbers, which pin a fixed list."""
import pandas as pd

import methods
from benchmark.cli.main import dataset_metrics


def test_every_method_gives_rows(layering_run):
    _, out = layering_run
    ran = set(pd.read_csv(out / "results.csv").method)
    assert set(methods.available()) <= ran, set(methods.available()) - ran


def test_every_metric_of_the_dataset_gives_a_value(layering_run):
    _, out = layering_run
    rows, sanity = pd.read_csv(out / "results.csv"), pd.read_csv(out / "sanity.csv")
    valued = set(rows[rows.value.notna()].metric) | set(sanity[sanity.n > 0].test)
    missing = set(dataset_metrics("all", "synthetic")) - valued
    assert not missing, f"no value from {sorted(missing)}"


def test_the_run_writes_its_report(layering_run):
    _, out = layering_run
    assert (out / "index.html").stat().st_size > 0 and (out / "tables.tex").exists()
