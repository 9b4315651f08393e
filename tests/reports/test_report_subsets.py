"""A report for the run the user made: a run that leaves the oracle out (a new method against
two old ones and random) still ranks and scales its leaderboard, and the maps' diagnostics
(ties, IG's convergence) sit in a table of their own, never plotted or marked as scores."""
import json

import pytest

RUN = ["--models", "blip-itm-tiny", "--methods",
       "cross_attn_gradcam,rollout,integrated_gradients,random", "--metrics",
       "pointing_game_above_chance,relevance_rank,deletion_auc", "--limit", "6",
       "--method-option", "integrated_gradients.max_steps=32", "--quiet"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from benchmark.cli.main import main

    out = tmp_path_factory.mktemp("subset")
    assert main(RUN + ["--out", str(out)]) == 0
    return out


def test_the_leaderboard_is_scaled_against_random_and_says_so(run):
    html = (run / "index.html").read_text()
    assert "no oracle in this run" in html and "Add oracle" in html
    from reports.leaderboard import boards
    from reports.latex import baselines
    from reports.run_files import read_csv

    (board,) = boards(read_csv(run, "summary.csv"), [], baselines(run))
    real = [cells for _, base, _, cells in board.rows if not base]
    assert all(c.normalised is not None for cells in real for c in cells.values())


def test_diagnostics_are_described_apart_not_ranked(run):
    manifest = json.loads((run / "manifest.json").read_text())
    assert {"tie_fraction", "max_tied", "ig_steps", "completeness_rel_delta"} <= \
        set(manifest["diagnostics"])
    figures = {p.name for p in (run / "figures").iterdir()}
    assert not any(d in name for d in manifest["diagnostics"] for name in figures)
    assert "forest_relevance_rank.svg" in figures
    main = (run / "tables" / "all_blip-itm-tiny.tex").read_text()
    assert "tie\\_fraction" not in main and "ig\\_steps" not in main
    about = (run / "tables" / "diagnostics_blip-itm-tiny.tex").read_text()
    assert "tie\\_fraction" in about and "ig\\_steps" in about and "\\textbf" not in about
    html = (run / "index.html").read_text()
    assert "Map diagnostics (described, not ranked)" in html
