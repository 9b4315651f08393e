import pytest

from metrics import vqa_accuracy
from metrics.vqa import exact_match, normalize_answer


def test_leave_one_out_min_three():
    answers = ["2"] * 3 + ["3"] * 7
    # for a "2" annotator left out, 2 others agree -> 2/3; for a "3" left out, 3 agree -> 1
    assert vqa_accuracy("2", answers) == pytest.approx((3 * (2 / 3) + 7 * 1.0) / 10)
    assert vqa_accuracy("3", answers) == pytest.approx(1.0)
    assert vqa_accuracy("4", answers) == 0.0


def test_single_agreement_gives_0_3():
    answers = ["yes"] + ["no"] * 9
    assert vqa_accuracy("yes", answers) == pytest.approx(9 * (1 / 3) / 10)


@pytest.mark.parametrize("raw,norm", [
    ("Two", "2"), ("the dog", "dog"), ("a red car!", "red car"), ("dont", "don't"),
    ("yes.", "yes"), ("3.5", "3.5"), ("black/white", "black white"), ("an apple", "apple"),
    ("  Yes  ", "yes"), ("none", "0"),
])
def test_official_normalisation(raw, norm):
    assert normalize_answer(raw) == norm


def test_normalisation_applies_to_both_sides():
    assert vqa_accuracy("Two", ["2"] * 10) == 1.0
    assert vqa_accuracy("the dog", ["dog"] * 10) == 1.0


def test_exact_match():
    assert exact_match("Red", ["red"] * 10) == 1.0
    assert exact_match("blue", ["red"] * 10) == 0.0
