"""What the dataset-loader tests share: the loader's records by id, the CLI in-process, and the
options of a run that exercises everything that reads the data."""
from __future__ import annotations

import datasets
from benchmark.core.errors import MissingImage


def records_by_id(name: str, root, **options) -> dict:
    """Every record of dataset ``name`` under ``root`` by sample id; a sample whose image is
    missing maps to its :class:`MissingImage`."""
    data = datasets.get(name)(data_root=str(root), **options)
    out = {}
    for i in range(len(data)):
        try:
            r = data[i]
            out[r.sample_id] = r
        except MissingImage as e:
            out[e.sample_id] = e
    return out


def in_process(args, capsys):
    """The CLI in this process (no interpreter start-up and imports per call): its exit status
    and what it wrote to stderr, as ``returncode`` and ``stderr``."""
    from types import SimpleNamespace

    from benchmark.cli.main import main

    capsys.readouterr()
    code = main([str(a) for a in args])
    return SimpleNamespace(returncode=code, stderr=capsys.readouterr().err)


def loader_run(dataset: str, sanity: bool = False) -> list:
    """CLI options that run every method and every metric that reads the data on ``dataset``,
    at a 64-step IG cap, without the report (CSVs are what the loader shapes); the sanity
    checks, which randomise the model and read no region, only with ``sanity`` (on one
    question, and without the stage-by-stage cascade, whose machinery ``emprt`` shares)."""
    import metrics
    from benchmark.cli.main import dataset_metrics

    names = [m for m in dataset_metrics("all", dataset) if m != "sanity_mprt"
             and (sanity or metrics.get(m).kind != "sanity")]
    return ["--dataset", dataset, "--methods", "all", "--metrics", ",".join(names),
            "--method-option", "integrated_gradients.max_steps=64", "--no-report",
            "--sanity-samples", "1"]
