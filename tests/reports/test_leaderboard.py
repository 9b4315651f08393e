"""The report's first screen: normalised scores, ranks by each metric's direction, baselines
set apart, and the computed sentence about significance."""
import pytest

from reports.leaderboard import boards

BASELINES = {"random", "oracle", "counterfactual_oracle", "center"}


def _row(method, metric, mean, higher=True, region="target", model="m", lo=None, hi=None):
    return {"model": model, "method": method, "metric": metric, "region": region, "subset": "all",
            "question_type": "all", "n": "10", "n_excluded": "0", "mean": str(mean),
            "ci_low": str(mean - 0.1 if lo is None else lo), "ci_high": str(mean + 0.1 if hi is None else hi),
            "higher_is_better": "True" if higher else "False"}


def _cmp(a, b, metric, diff, p, model="m", region="target"):
    return {"kind": "method", "metric": metric, "region": region, "fixed": model, "a": a, "b": b,
            "n": "10", "mean_diff": str(diff), "ci_low": "", "ci_high": "", "p": str(p),
            "p_holm": str(p)}


SUMMARY = [
    # higher is better: random 0.2, oracle 1.0
    _row("random", "pointing_game_above_chance", 0.2), _row("oracle", "pointing_game_above_chance", 1.0),
    _row("gradcam", "pointing_game_above_chance", 0.6), _row("rollout", "pointing_game_above_chance", 0.4),
    # lower is better: random 0.8, oracle 0.2 — a method at 0.5 is halfway
    _row("random", "deletion_auc", 0.8, False, ""), _row("oracle", "deletion_auc", 0.2, False, ""),
    _row("gradcam", "deletion_auc", 0.5, False, ""), _row("rollout", "deletion_auc", 0.3, False, ""),
    # a counterfactual metric: normalised against the counterfactual oracle, not the mask oracle
    _row("random", "object_faithfulness_outside_target", 0.0, region=""),
    _row("oracle", "object_faithfulness_outside_target", 0.1, region=""),
    _row("counterfactual_oracle", "object_faithfulness_outside_target", 0.8, region=""),
    _row("gradcam", "object_faithfulness_outside_target", 0.4, region=""),
    _row("rollout", "object_faithfulness_outside_target", 0.2, region=""),
    # rows outside the first screen's view are ignored
    _row("rollout", "pointing_game_above_chance", 0.99, region="control"),
]


def test_scores_are_normalised_between_random_and_the_metrics_own_oracle():
    (board,) = boards(SUMMARY, [], BASELINES)
    cells = {m: c for m, _, _, c in board.rows}
    assert cells["gradcam"]["pointing_game_above_chance"].normalised == pytest.approx(0.5)
    assert cells["gradcam"]["deletion_auc"].normalised == pytest.approx(0.5)  # lower is better
    assert cells["rollout"]["deletion_auc"].normalised == pytest.approx(5 / 6)
    assert cells["gradcam"]["object_faithfulness_outside_target"].normalised == pytest.approx(0.5)
    assert cells["random"]["deletion_auc"].normalised == 0.0
    assert cells["oracle"]["pointing_game_above_chance"].normalised == 1.0
    # the raw numbers are summary.csv's
    assert cells["rollout"]["pointing_game_above_chance"].mean == 0.4
    assert cells["rollout"]["pointing_game_above_chance"].ci_low == pytest.approx(0.3)


def test_methods_are_ranked_by_each_metrics_direction_and_baselines_are_set_apart():
    (board,) = boards(SUMMARY, [], BASELINES)
    order = [m for m, *_ in board.rows]
    # gradcam: ranks 1 (rank), 2 (deletion: 0.5 is worse than 0.3), 1 (faithfulness) → 1.33
    assert order[:2] == ["gradcam", "rollout"]
    assert board.rows[0][2] == pytest.approx(4 / 3) and board.rows[1][2] == pytest.approx(5 / 3)
    assert [m for m, base, *_ in board.rows if base] == ["counterfactual_oracle", "oracle", "random"]
    assert all(rank is None for _, base, rank, _ in board.rows if base)  # never ranked


def test_the_sentence_counts_only_significant_leads_in_the_right_direction():
    comps = [_cmp("gradcam", "rollout", "pointing_game_above_chance", 0.2, 0.01),  # gradcam ahead
             _cmp("gradcam", "rollout", "deletion_auc", 0.2, 0.001),  # higher AUC: rollout ahead
             _cmp("gradcam", "rollout", "object_faithfulness_outside_target", 0.2, 0.2)]  # not significant
    (board,) = boards(SUMMARY, comps, BASELINES)
    assert board.sentence == (
        "m: gradcam ranks first (mean rank 1.33 over 3 metrics: deletion_auc, "
        "object_faithfulness_outside_target, pointing_game_above_chance); it is significantly ahead of "
        "rollout (mean rank 1.67) on 1 of 3 (pointing_game_above_chance), and significantly "
        "behind it on deletion_auc (paired sign-flip permutation test of the mean difference, "
        "Holm-corrected within the model and metric, p < 0.05).")
    (board,) = boards(SUMMARY, [], BASELINES)
    assert "on 0 of 3 (paired" in board.sentence  # no test, no claim


def test_the_mean_rank_reads_only_the_primary_metrics_that_pass_the_meta_evaluation():
    (board,) = boards(SUMMARY, [], BASELINES, passing={"deletion_auc", "sparseness"})
    # deletion alone: rollout (0.3) ahead of gradcam (0.5)
    assert [m for m, base, *_ in board.rows if not base] == ["rollout", "gradcam"]
    assert board.rows[0][2] == 1.0 and board.ranked_by == (
        "ranked by the primary metrics that pass the meta-evaluation (meta.csv); left out: "
        "object_faithfulness_outside_target, pointing_game_above_chance")
    assert "over 1 metrics: deletion_auc" in board.sentence
    (board,) = boards(SUMMARY, [], BASELINES, passing=set())
    assert [(m, rank) for m, base, rank, _ in board.rows if not base] == [("gradcam", None),
                                                                          ("rollout", None)]
    assert board.sentence == ("m: not ranked (no primary metric passes the meta-evaluation "
                              "(meta.csv)).")
    (board,) = boards(SUMMARY, [], BASELINES)  # no meta-evaluation in the run: as before
    assert board.ranked_by == "" and board.rows[0][2] == pytest.approx(4 / 3)


def test_method_matrix_is_antisymmetric_and_marks_only_holm_significant_pairs():
    from reports.matrices import method_matrices

    comps = [_cmp("gradcam", "rollout", "relevance_rank", 0.2, 0.01),
             _cmp("gradcam", "random", "relevance_rank", 0.4, 0.2),
             {**_cmp("rollout", "random", "relevance_rank", 0.1, 0.5), "n": "0"},  # no questions
             _cmp("gradcam", "rollout", "relevance_rank", 0.3, 0.01, region="control")]
    (t,) = method_matrices(comps)
    assert t["methods"] == ["gradcam", "random", "rollout"]
    cell = {(a, b): c for a, row in zip(t["methods"], t["cells"])
            for b, c in zip(t["methods"], row)}
    assert cell[("gradcam", "rollout")]["diff"] == 0.2 and cell[("rollout", "gradcam")]["diff"] == -0.2
    assert cell[("gradcam", "rollout")]["significant"]
    assert not cell[("gradcam", "random")]["significant"]
    assert cell[("rollout", "random")] is None and cell[("gradcam", "gradcam")] is None


def _run_folder(tmp_path, summary, comparisons):
    import csv
    import json

    from benchmark.engine.comparisons import COLUMNS as COMPARISON_COLUMNS
    from benchmark.engine.tables import SUMMARY_COLUMNS

    for name, rows, cols in (("summary.csv", summary, SUMMARY_COLUMNS),
                             ("comparisons.csv", comparisons, COMPARISON_COLUMNS)):
        with open(tmp_path / name, "w", newline="") as fh:
            w = csv.DictWriter(fh, cols)
            w.writeheader()
            w.writerows(rows)
    methods = {m: {"is_baseline": m in BASELINES} for m in {r["method"] for r in summary}}
    (tmp_path / "manifest.json").write_text(json.dumps({"seed": 7, "methods": methods}))
    return tmp_path


def test_paper_tables_bold_by_direction_dagger_unsure_leads_and_never_a_baseline(tmp_path):
    from reports.latex import table_files

    out = _run_folder(tmp_path, SUMMARY, [_cmp("gradcam", "rollout",
                                               "pointing_game_above_chance", 0.2, 0.01)])
    main = table_files(out)["main_m"]
    rows = {line.split(" & ")[0]: line for line in main.splitlines() if " & " in line}
    # columns in the analysis's order: deletion_auc, object_faithfulness_outside_target,
    # pointing_game_above_chance. Pointing: gradcam leads significantly; deletion (lower is
    # better): rollout leads, untested, so with a dagger; the oracle's better scores never bold
    assert rows["gradcam"].split(" & ")[3].startswith("\\textbf{0.600 [0.500, 0.700]}")
    assert rows["rollout"].split(" & ")[1] == "\\textbf{0.300 [0.200, 0.400]}$^\\dagger$"
    assert "textbf" not in rows["oracle"] and "textbf" not in rows["counterfactual\\_oracle"]
    assert "seed 7" in main and "n = 10 per cell" in main and "Holm" in main
    assert (out / "tables").exists() is False  # table_files only returns text


def test_family_and_sanity_figures_are_written_as_pdf_and_svg(tmp_path):
    from reports.figures import family_figures, sanity_figures

    fam = [{**_row(m, "relevance_rank", v), "question_type": f}
           for m, v in (("gradcam", 0.6), ("random", 0.2)) for f in ("count", "exist")]
    assert len(family_figures(fam, tmp_path, ["relevance_rank"])) == 1
    sanity = [{"model": "m", "method": "gradcam", "test": "sanity_mprt", "index": str(i),
               "stage": s, "statistic": "spearman", "n": "4", "mean": str(v),
               "ci_low": str(v - 0.1), "ci_high": str(v + 0.1)}
              for i, s, v in ((-1, "rerun", 1.0), (0, "heads", 0.8), (1, "text_layer_1", 0.2))]
    (fig,) = sanity_figures(sanity, tmp_path)
    assert fig["src"].startswith("data:image/png;base64,")
    names = sorted(p.name for p in (tmp_path / "figures").iterdir())
    assert names == ["families_relevance_rank.pdf", "families_relevance_rank.svg",
                     "sanity_m.pdf", "sanity_m.svg"]
    assert b"CreationDate" not in (tmp_path / "figures" / "sanity_m.pdf").read_bytes()


def test_a_tie_at_the_top_bolds_every_tied_method_and_is_never_a_significant_lead(tmp_path):
    from reports.latex import table_files

    metric = "pointing_game_above_chance"
    tied = [r for r in SUMMARY if r["metric"] == metric and r["method"] != "rollout"]
    tied.append(_row("rollout", metric, 0.6))  # equal to gradcam
    out = _run_folder(tmp_path, tied, [_cmp("gradcam", "rollout", metric, 0.0, 0.001)])
    rows = {line.split(" & ")[0]: line for line in table_files(out)["main_m"].splitlines()
            if " & " in line}
    for method in ("gradcam", "rollout"):
        assert rows[method].split(" & ")[1].startswith("\\textbf{0.600") and "dagger" in rows[method]


def test_appendix_tables_per_family_and_for_the_sanity_checks(tmp_path):
    import csv

    from reports.latex import table_files

    fam = [{**_row(m, "pointing_game_above_chance", v), "question_type": f}
           for m, f, v in (("gradcam", "count", 0.6), ("rollout", "count", 0.7),
                           ("oracle", "count", 0.9), ("gradcam", "exist", 0.5),
                           ("rollout", "exist", 0.5), ("oracle", "exist", 0.9))]
    out = _run_folder(tmp_path, SUMMARY + fam, [])
    sanity = [{"model": "m", "method": m, "test": "sanity_mprt", "index": str(i), "stage": s,
               "statistic": "spearman", "n": "4", "mean": str(v), "ci_low": str(v - 0.1),
               "ci_high": str(v + 0.1)}
              for m in ("gradcam", "rollout")
              for i, s, v in ((-1, "rerun", 1.0), (0, "heads", 0.8), (1, "input", 0.2))]
    with open(out / "sanity.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, list(sanity[0]))
        w.writeheader()
        w.writerows(sanity)
    files = table_files(out)
    lines = {line.split(" & ")[0]: line.rstrip(" \\").split(" & ")[1:]
             for line in files["family_m"].splitlines() if " & " in line}
    assert lines["method"] == ["count", "exist"]
    # count: rollout best (bold); exist: a tie, both bold; the oracle never
    assert lines["rollout"] == ["\\textbf{0.700}", "\\textbf{0.500}"]
    assert lines["gradcam"] == ["0.600", "\\textbf{0.500}"]
    assert lines["oracle"] == ["0.900", "0.900"]
    checks = {line.split(" & ")[0]: line.rstrip(" \\").split(" & ")[1:]
              for line in files["sanity_m"].splitlines() if " & " in line}
    # the rerun stage and the last (fully randomised) stage, not an intermediate one
    assert checks["gradcam"] == ["1.000 [0.900, 1.100]", "0.200 [0.100, 0.300]"]
    assert "seed 7" in files["sanity_m"] and "n = 4 per cell" in files["sanity_m"]


def test_model_tables_keep_only_tested_pairs_of_real_methods():
    from reports.matrices import model_tables

    def mc(method, a, b, diff, p, n="10", metric="relevance_rank"):
        return {**_cmp(a, b, metric, diff, p), "kind": "model", "fixed": method, "n": n}

    comps = [mc("gradcam", "base", "fused", 0.1, 0.01), mc("rollout", "base", "fused", -0.2, 0.3),
             mc("gradcam", "base", "untrained", 0.3, 0.001, n="0"),  # no common question
             mc("random", "base", "fused", 0.0, 1.0)]  # a baseline: maps independent of the model
    (t,) = model_tables(comps, ["relevance_rank", "deletion_auc"], BASELINES)
    assert t["pairs"] == [("base", "fused")] and t["methods"] == ["gradcam", "rollout"]
    assert t["cells"][0][0]["diff"] == 0.1 and t["cells"][0][0]["significant"]
    assert not t["cells"][1][0]["significant"]


def test_controlled_model_pairs_differ_in_one_factor():
    from reports.matrices import controlled

    def info(fused, recipe):
        return {"config": {"fused": fused}, "recipe": recipe}

    models = {"blip": info(False, "supervised"), "blip-plain": info(False, "plain"),
              "blip@init": info(False, "untrained"), "difnet": info(True, "supervised"),
              "difnet@init": info(True, "untrained"), "hf": {"config": None}}
    pairs = controlled(models)
    assert ("blip", "difnet") in pairs and ("blip", "blip@init") in pairs
    assert ("blip@init", "difnet@init") in pairs and ("blip", "blip-plain") in pairs
    assert ("blip-plain", "difnet") not in pairs and ("blip@init", "difnet") not in pairs
    assert {("blip", "hf"), ("difnet@init", "hf")} <= pairs  # no factors: paired with all


def test_tables_tex_compiles_with_pdflatex(tmp_path):
    """Every generated table, in one document, through pdflatex (where it is installed)."""
    import shutil
    import subprocess

    from benchmark.cli.main import main

    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex is not installed (Debian: texlive-latex-recommended)")
    out = tmp_path / "run"
    assert main(["--models", "blip-itm-tiny", "--methods", "random,cross_attn_gradcam,oracle",
                 "--metrics", "pointing_game,relevance_rank,deletion_auc,random_logit",
                 "--limit", "6", "--batch-size", "3", "--steps", "4", "--sanity-samples", "4",
                 "--quiet", "--out", str(out)]) == 0
    (out / "doc.tex").write_text("\\documentclass{article}\\usepackage{booktabs}"
                                 "\\usepackage{graphicx}\\usepackage{longtable}"
                                 "\\begin{document}\\input{tables.tex}\\end{document}\n")
    r = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"],
                       cwd=out, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-2000:]
    assert "Float too large" not in r.stdout and (out / "doc.pdf").exists()


def test_a_run_without_the_oracle_is_normalised_against_random_and_says_so():
    """The natural way to compare a new method with two old ones leaves the oracle out: the
    board then scores the difference to random in each metric's direction (it used to show
    only dashes), and says so in one line."""
    no_oracle = [r for r in SUMMARY if "oracle" not in r["method"]]
    (board,) = boards(no_oracle, [], BASELINES)
    cells = {m: c for m, _, _, c in board.rows}
    assert cells["gradcam"]["pointing_game_above_chance"].normalised == pytest.approx(0.4)
    assert cells["rollout"]["deletion_auc"].normalised == pytest.approx(0.5)  # 0.8 − 0.3, lower
    assert cells["random"]["deletion_auc"].normalised == 0.0
    assert set(board.scale.values()) == {"random"}
    assert "no oracle in this run" in board.note and "Add oracle" in board.note
    assert "\n" not in board.note
    (board,) = boards(SUMMARY, [], BASELINES)
    assert board.note == "" and set(board.scale.values()) == {"oracle"}
    (board,) = boards([r for r in no_oracle if r["method"] != "random"], [], BASELINES)
    assert set(board.scale.values()) == {"rank"} and "ranks only" in board.note
    assert [m for m, *_ in board.rows] == ["gradcam", "rollout"]  # still ranked


@pytest.mark.parametrize("models", [1, 2, 4])
def test_forest_titles_stay_inside_their_figure(models):
    """The legend in the title is wrapped to the figure's width (it was cut at the left edge
    of a one-panel figure)."""
    from reports.figures import _pyplot, forest

    rows = [_row(meth, "counterfactual_pointing", 0.5, model=f"model-{k}", region="")
            for k in range(models) for meth in ("gradcam", "random", "counterfactual_oracle")]
    fig = forest("counterfactual_pointing", rows, {"random", "counterfactual_oracle"})
    fig.canvas.draw()
    box = fig._suptitle.get_window_extent()
    assert box.x0 >= 0 and box.x1 <= fig.bbox.x1 and box.y1 <= fig.bbox.y1
    _pyplot().close(fig)
