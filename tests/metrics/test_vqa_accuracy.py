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


def test_human_answers_get_only_the_official_punctuation_step_and_only_when_they_disagree():
    # the evaluator's quirks, kept: number words and case are normalised in the prediction only
    assert vqa_accuracy("two", ["two"] * 10) == 0.0
    assert vqa_accuracy("yes", ["Yes"] * 10) == 0.0
    # a mark inside a disagreeing human answer becomes a space that is never stripped
    assert vqa_accuracy("yes", ["yes!"] * 3 + ["no"] * 7) == 0.0


CASES = [  # (prediction, the ten human answers)
    ("Two", ["2"] * 10), ("two", ["two"] * 10), ("yes", ["Yes"] * 10),
    ("the dog", ["dog"] * 6 + ["a dog"] * 2 + ["dogs", "puppy"]),
    ("3.5", ["3.5"] * 4 + ["3,5"] * 3 + ["three and a half"] * 3),
    ("black/white", ["black and white"] * 5 + ["black/white"] * 3 + ["black white"] * 2),
    ("dont know", ["don't know"] * 4 + ["dont know"] * 3 + ["no idea"] * 3),
    ("red!", ["red!"] * 2 + ["red"] * 8), ("1,000", ["1000"] * 5 + ["1,000"] * 5),
    ("  Yes\n", ["yes"] * 9 + ["yes."]),
]


def test_equals_the_official_evaluator_on_shared_inputs(tmp_path):
    import json

    from lavis.common.vqa_tools.vqa import VQA
    from lavis.common.vqa_tools.vqa_eval import VQAEval

    qs = [{"question_id": i, "image_id": i, "question": "?"} for i in range(len(CASES))]
    anns = [{"question_id": i, "image_id": i, "question_type": "what", "answer_type": "other",
             "answers": [{"answer": a, "answer_id": k + 1, "answer_confidence": "yes"}
                         for k, a in enumerate(answers)]}
            for i, (_, answers) in enumerate(CASES)]
    res = [{"question_id": i, "answer": pred} for i, (pred, _) in enumerate(CASES)]
    header = {"info": {}, "task_type": "Open-Ended", "data_type": "mscoco",
              "data_subtype": "val2014", "license": {}}
    for name, obj in (("q.json", {**header, "questions": qs}), ("a.json", {"annotations": anns}),
                      ("r.json", res)):
        (tmp_path / name).write_text(json.dumps(obj))
    vqa = VQA(str(tmp_path / "a.json"), str(tmp_path / "q.json"))
    ev = VQAEval(vqa, vqa.loadRes(str(tmp_path / "r.json"), str(tmp_path / "q.json")), n=6)
    ev.evaluate()
    for i, (pred, answers) in enumerate(CASES):
        assert round(100 * vqa_accuracy(pred, answers), 6) == ev.evalQA[i], (pred, answers)
