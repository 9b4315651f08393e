"""An exploratory method on the first screen: shown with its scores, never ranked, and the
real methods' ranks as without it."""
import json

import pytest

from reports.latex import baselines, exploratory
from reports.leaderboard import boards
from tests.reports.test_leaderboard import BASELINES, SUMMARY, _row

WITH_LRP = SUMMARY + [_row("lrp", "pointing_game_above_chance", 0.95),
                      _row("lrp", "deletion_auc", 0.1, False, "")]


def test_an_exploratory_method_is_shown_unranked_and_moves_no_rank():
    (alone,) = boards(SUMMARY, [], BASELINES)
    (board,) = boards(WITH_LRP, [], BASELINES, exploratory={"lrp"})
    ranked = [(m, rank) for m, _, rank, _ in board.rows if rank is not None]
    assert ranked == [(m, rank) for m, _, rank, _ in alone.rows if rank is not None]
    lrp = next(r for r in board.rows if r[0] == "lrp")
    assert lrp[1] is False and lrp[2] is None  # not a baseline, not ranked
    assert lrp[3]["pointing_game_above_chance"].normalised == pytest.approx(0.9375)
    assert board.sentence.startswith("m: gradcam ranks first")


def test_the_manifest_roles_name_the_exploratory_methods_apart_from_the_baselines(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"methods": {
        "lrp": {"is_baseline": False, "role": "exploratory"},
        "random": {"is_baseline": True, "role": "baseline"},
        "gradcam": {"is_baseline": False, "role": "method"}}}))
    assert exploratory(tmp_path) == {"lrp"} and baselines(tmp_path) == {"random"}
