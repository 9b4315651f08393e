"""The command line: flags, exit codes, one-line errors, the files a run writes."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import methods
from benchmark.cli.main import main
from methods.base import Attribution, Diagnostic, Explanation
from tests.fixtures.cli_helpers import CSVS, SMALL, one_line_error

ROOT = Path(__file__).resolve().parents[2]
def test_list(capsys):
    assert main(["--list"]) == 0
    out = capsys.readouterr().out
    for name in ("blip-itm-tiny", "cross_attn_gradcam", "pointing_game", "synthetic", "vqav2"):
        assert name in out


def test_help_explains_flags_and_exit_codes():
    r = subprocess.run([sys.executable, "-m", "benchmark", "--help"], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 0
    for text in ("--models", "--limit", "--out", "Exit status", "examples"):
        assert text in r.stdout


def test_a_quiet_run_prints_nothing_on_stderr(tmp_path):
    # third-party import-time deprecation warnings would bury the promised one-line errors
    r = subprocess.run([sys.executable, "-m", "benchmark", *SMALL, "--out", str(tmp_path)],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""


@pytest.mark.parametrize("argv,needle", [
    (["--models", "nope"], "unknown model 'nope'"),
    (["--methods", "nope"], "unknown method 'nope'"),
    (["--metrics", "nope"], "unknown metric 'nope'"),
    (["--dataset", "nope"], "unknown dataset 'nope'"),
    (["--limit", "0"], "positive integer"),
    (["--limit", "ten"], "positive integer"),
    (["--fusion", "Lf=3,N=3"], "Lf < N"),
    (["--method-option", "integrated_gradients.nsteps=8"],
     "has no option 'nsteps'; its options: rule, n_steps, max_steps"),
    (["--method-option", "nope.n=1"], "unknown method 'nope'"),
    (["--method-option", "rollout.block=x"], "option 'block' expects int, not 'x'"),
    (["--method-option", "integrated_gradients.baseline=grey"], "must be one of blur, zero"),
    (["--method-option", "n_steps=8"], "METHOD.OPTION=VALUE"),
    (["--methods", "random", "--method-option", "rollout.block=1"], "which --methods does not run"),
])
def test_bad_usage_is_one_line_and_exit_2(capsys, tmp_path, argv, needle):
    line = one_line_error(capsys, argv + ["--out", str(tmp_path / "o")])
    assert needle in line


def test_a_method_option_reaches_the_method_the_manifest_and_the_cache_key(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    argv = ["--models", "blip-itm-tiny", "--methods", "cross_attn_gradcam,random", "--metrics",
            "relevance_mass", "--limit", "4", "--batch-size", "4", "--quiet"]
    assert main(argv + ["--out", str(a)]) == 0
    assert main(argv + ["--method-option", "cross_attn_gradcam.block=0", "--out", str(b)]) == 0
    manifest = json.loads((b / "manifest.json").read_text())
    assert manifest["methods"]["cross_attn_gradcam"]["options"] == {"block": 0, "target": "itm"}
    assert manifest["methods"]["random"]["is_baseline"]
    assert manifest["config"]["method_options"] == {"cross_attn_gradcam": {"block": 0}}
    assert (a / "cache" / "config-digest").read_text() != (b / "cache" / "config-digest").read_text()
    import pandas as pd

    ra, rb = (pd.read_csv(d / "results.csv") for d in (a, b))
    gradcam = lambda r: r[r.method == "cross_attn_gradcam"].value.to_numpy()  # noqa: E731
    assert not np.allclose(gradcam(ra), gradcam(rb))  # another layer, other maps
    same = lambda r: r[r.method == "random"].value.to_numpy()  # noqa: E731
    assert np.array_equal(same(ra), same(rb))


def test_unknown_name_lists_the_known_ones(capsys, tmp_path):
    line = one_line_error(capsys, ["--models", "nope", "--out", str(tmp_path)])
    assert "blip-itm-tiny" in line and "difnet-itm-tiny" in line


def test_unwritable_out_is_one_line(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    line = one_line_error(capsys, SMALL + ["--out", str(blocker / "run")])
    assert "cannot write to --out" in line


def test_missing_weights_skip_with_one_line_or_fail_cleanly(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    line = one_line_error(capsys, ["--models", "blip-itm-base", "--out", str(tmp_path / "a")])
    assert "model_base_retrieval_coco.pth" in line
    assert main(["--models", "blip-itm-base,blip-itm-tiny@init", *SMALL[2:], "--out",
                 str(tmp_path / "b")]) == 0
    err = capsys.readouterr().err
    assert err.count("skipping blip-itm-base") == 1 and "Traceback" not in err


def test_run_writes_every_file(tmp_path):
    out = tmp_path / "run"
    assert main(SMALL + ["--out", str(out)]) == 0
    for name in ("results.csv", "summary.csv", "curves.csv", "comparisons.csv", "sanity.csv",
                 "stability.csv", "agreement.csv", "tokens.csv", "modality.csv",
                 "manifest.json", "index.html", "tables.tex", "run.log"):
        assert (out / name).exists(), name
    manifest = json.loads((out / "manifest.json").read_text())
    for key in ("packages", "seed", "config", "git_commit", "dataset", "timings_s", "machine"):
        assert key in manifest
    # where the time went: every method's maps and every metric that runs the model
    assert {"random/explain", "cross_attn_gradcam/explain",
            "cross_attn_gradcam/deletion_auc"} <= set(manifest["profile_s"])
    assert manifest["dataset"]["pointing_tolerance_px"] == pytest.approx(15 * 96 / 224)
    assert "fingerprint" in manifest["models"]["blip-itm-tiny@init"]
    header = (out / "results.csv").read_text().splitlines()[0].split(",")
    for col in ("model", "method", "metric", "sample_id", "question_type", "value", "note"):
        assert col in header
    summary = (out / "summary.csv").read_text().splitlines()[0].split(",")
    for col in ("model", "method", "metric", "n", "mean", "ci_low", "ci_high"):
        assert col in summary
    html = (out / "index.html").read_text()
    assert "data:image/png;base64," in html and "http://" not in html.replace("http://www.w3.org", "")


#: a trained model with every kind of metric, so that curves, model-based comparisons and
#: sanity rows exist to be compared (on an untrained control they are all "not applicable")
TRAINED = ["--models", "blip-itm-tiny", "--methods", "random,cross_attn_gradcam,integrated_gradients",
           "--metrics", "pointing_game,relevance_rank,deletion_auc,vqa_keep_auc,"
           "object_faithfulness,random_logit,text_deletion_auc", "--limit", "6",
           "--batch-size", "3",
           "--quiet", "--steps", "4", "--sanity-samples", "4",
           # IG's convergence rows are compared too; integrating to 4096 steps adds only time
           "--method-option", "integrated_gradients.max_steps=128"]
def test_same_seed_same_bytes_and_report_rerenders(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(TRAINED + ["--out", str(a)]) == 0
    assert main(TRAINED + ["--out", str(b)]) == 0
    for name in CSVS + ("tokens.csv", "modality.csv", "agreement.csv", "stability.csv"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert len((a / "tokens.csv").read_text().splitlines()) > 6
    import pandas as pd

    curves, comp = pd.read_csv(a / "curves.csv"), pd.read_csv(a / "comparisons.csv")
    sanity = pd.read_csv(a / "sanity.csv")
    assert {"deletion_auc", "vqa_keep_auc"} <= set(curves.metric)
    assert curves.n.between(1, 6).all() and (curves.ci_low <= curves.value + 1e-12).all() \
        and (curves.value <= curves.ci_high + 1e-12).all() and (curves.ci_high > curves.ci_low).any()
    model_based = comp[(comp.metric == "deletion_auc") & comp.p.notna()]
    assert len(model_based) and (comp.kind == "region").any()
    assert sanity["mean"].notna().sum() > 0 and set(sanity.test) == {"random_logit"}
    figures = sorted(p.name for p in (a / "figures").iterdir())
    assert {"leaderboard_blip-itm-tiny.pdf", "leaderboard_blip-itm-tiny.svg",
            "forest_deletion_auc.svg", "curve_blip-itm-tiny_deletion_auc.pdf"} <= set(figures)
    for name in figures:  # every figure, byte for byte
        assert (a / "figures" / name).read_bytes() == (b / "figures" / name).read_bytes(), name
    from reports import leaderboard
    from reports.run_files import read_csv

    (board,) = leaderboard.boards(read_csv(a, "summary.csv"), read_csv(a, "comparisons.csv"), {"random"})
    html = (a / "index.html").read_text()
    assert board.sentence in html and board.sentence.startswith("blip-itm-tiny: ")
    gradcam = dict((m, c) for m, _, _, c in board.rows)["cross_attn_gradcam"]
    row = summary_row(a, "blip-itm-tiny", "cross_attn_gradcam", "relevance_rank", "target")
    assert f"{gradcam['relevance_rank'].mean:.3f}" == f"{float(row['mean']):.3f}"
    assert f"mean {float(row['mean']):.3f} [{float(row['ci_low']):.3f}, " \
           f"{float(row['ci_high']):.3f}]" in html  # the hover text: summary.csv's numbers
    tex = (a / "tables.tex").read_bytes()
    (a / "index.html").unlink()
    assert main(["report", str(a)]) == 0
    assert (a / "index.html").exists() and (a / "tables.tex").read_bytes() == tex
    assert main(["reproduce", str(a / "manifest.json"), "--out", str(tmp_path / "c")]) == 0


def summary_row(out, model, method, metric, region):
    import csv

    with open(out / "summary.csv", newline="") as fh:
        return next(r for r in csv.DictReader(fh) if (r["model"], r["method"], r["metric"],
                                                       r["region"], r["subset"], r["question_type"])
                    == (model, method, metric, region, "all", "all"))


class _NaNMap(Attribution):
    def attribute(self, model, images, questions, **_):
        maps = torch.rand(images.shape[0], *model.grid)
        maps[0, 0, 0] = float("nan")  # the first sample of every batch
        return maps


def test_nan_maps_are_counted_and_reported_not_fatal(tmp_path, monkeypatch):
    monkeypatch.setitem(methods.REGISTRY._items, "nan_map", _NaNMap())
    out = tmp_path / "run"
    argv = ["--models", "blip-itm-tiny", "--methods", "nan_map", *SMALL[4:]]
    assert main(argv + ["--out", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["nonfinite_maps"] == {"blip-itm-tiny/nan_map": 2}
    rows = (out / "results.csv").read_text().splitlines()
    pg = [r for r in rows if ",pointing_game,target," in r and "non-finite" in r]
    assert pg and all(",0," in r for r in pg)  # a miss, never a hit
    assert any(",deletion_auc,," in r and r.endswith("non-finite map") for r in rows)


def test_full_disk_is_one_line_and_keeps_results(tmp_path, capsys):
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(mnt)],
                      capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        code = main(SMALL + ["--out", str(mnt / "run")])
        err = [l for l in capsys.readouterr().err.splitlines() if l.strip()]
        assert code == 2 and len(err) == 1 and "free space" in err[0], err
        assert any((mnt / "run" / "cache").rglob("batch-*.json"))  # computed units kept
    finally:
        subprocess.run(["umount", str(mnt)])


class _HalfConverged(Attribution):
    """Returns its convergence per sample as IG does: every other map did not converge."""

    def attribute(self, model, images, questions):
        b = images.shape[0]
        ok = torch.arange(b) % 2 == 0
        maps = torch.rand(b, *model.grid, generator=torch.Generator().manual_seed(b))
        gap = Diagnostic(torch.where(ok, 0.01, 0.4), higher_is_better=False)
        return Explanation(maps, {"completeness_rel_delta": gap}, valid=ok)


def test_unconverged_maps_and_unmatched_questions_keep_noted_rows_out_of_the_means(tmp_path,
                                                                                   monkeypatch):
    import pandas as pd

    monkeypatch.setitem(methods.REGISTRY._items, "half", _HalfConverged())
    out = tmp_path / "run"
    argv = ["--models", "blip-itm-tiny", "--methods", "half", "--metrics",
            "pointing_game,deletion_auc,object_faithfulness", "--limit", "14", "--batch-size", "7",
            "--quiet", "--steps", "4", "--out", str(out)]
    assert main(argv) == 0
    res = pd.read_csv(out / "results.csv", keep_default_na=False)
    rel = res[res.metric == "completeness_rel_delta"]
    bad = set(rel[rel.value.astype(float) > 0.05].sample_id)
    assert len(bad) == 6  # positions 1, 3, 5 of each batch of 7
    scored = res[res.metric.isin(["pointing_game", "deletion_auc", "object_faithfulness"])]
    for _, r in scored[scored.sample_id.isin(bad)].iterrows():
        assert r.value == "" and "did not converge" in r.note
    # exist questions answered "no" do not match their image: no deletion curve for them
    from datasets.loader_synthetic import SyntheticDataset

    data = SyntheticDataset("test")
    unmatched = {data[i].sample_id for i in range(14) if data[i].extra["itm_label"] == 0}
    dele = res[(res.metric == "deletion_auc") & res.sample_id.isin(unmatched - bad)]
    assert len(dele) and all("ITM label 0" in n for n in dele.note)
    summary = pd.read_csv(out / "summary.csv")
    row = summary[(summary.metric == "deletion_auc") & (summary.subset == "all")
                  & (summary.question_type == "all")].iloc[0]
    assert row.n == 14 - len(bad | unmatched) and row.n_excluded == len(bad | unmatched)
