"""The train and evaluate subcommands: one-line usage errors, held-out accuracy per family."""
import pytest

from benchmark.cli.main import main
from tests.fixtures.cli_helpers import one_line_error


@pytest.mark.parametrize("argv,needle", [
    (["evaluate", "--models", "nope"], "embedded models are"),
    (["evaluate", "--segmentation", "exact,bogus"], "unknown segmentation source 'bogus'"),
    (["evaluate", "--questions", "0"], "positive integer"),
])
def test_evaluate_bad_usage_is_one_line(capsys, argv, needle):
    assert needle in one_line_error(capsys, argv)


def test_train_stage1_must_be_a_first_stage_of_the_same_model(capsys, tmp_path):
    assert "needs the checkpoint and its .json" in one_line_error(
        capsys, ["train", "--model", "blip-itm-tiny", "--stage1", str(tmp_path / "none.pt")])
    from benchmark.models import CHECKPOINT_DIR

    line = one_line_error(capsys, ["train", "--model", "difnet-itm-tiny", "--quiet", "--stage1",
                                    str(CHECKPOINT_DIR / "blip-itm-tiny.pt")])
    assert "another config" in line
    line = one_line_error(capsys, ["train", "--model", "blip-itm-tiny", "--quiet", "--stage1",
                                    str(CHECKPOINT_DIR / "blip-itm-tiny.pt")])
    assert "already includes the evidence-view stage" in line


def test_evaluate_prints_and_writes_per_family_accuracy(capsys, tmp_path):
    out = tmp_path / "heldout.csv"
    assert main(["evaluate", "--models", "all", "--questions", "28", "--quiet",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "itm_accuracy" in printed and "spatial_relation" in printed
    import pandas as pd

    table = pd.read_csv(out)
    assert set(table.family) == {"all", "exist", "query_colour", "query_shape", "count",
                                 "spatial_relation", "relation_check", "compare"}
    assert table[["itm_accuracy", "vqa_accuracy"]].stack().between(0, 1).all()
    runs = set(zip(table.model, table.segmentation))
    from benchmark import models
    from benchmark.models.embedded import EMBEDDED

    expected = set()
    for name, spec in EMBEDDED.items():
        if not models.missing(name):  # a model without a checkpoint is skipped with one line
            expected |= {(name, s) for s in (("exact", "shuffled") if spec.config.fused
                                             else ("-",))}
    assert {("blip-itm-tiny", "-"), ("difnet-itm-tiny", "exact"),
            ("difnet-itm-tiny", "shuffled")} <= runs == expected
