"""Text pointing: the most relevant question token against the words the question program
says the answer depends on."""
import numpy as np
import pytest
import torch

import metrics
from benchmark.core.errors import NotApplicable
from datasets.loader_synthetic import SyntheticDataset
from metrics.text_pointing import known_words, names_one, pointing_above_chance


def test_the_known_words_of_a_relation_program_and_of_a_count():
    relation = {"referents": [{"shape": "circle", "relation": "left of",
                               "anchor": {"colour": "red", "shape": "square"}},
                              {"colour": "red", "shape": "square"}],
                "family": "spatial_relation", "answer": "green"}
    assert known_words(relation) == {"circle", "left", "red", "square"}  # not the answer
    assert known_words({"referents": [{"colour": "red"}], "answer": "2"}) == {"red"}
    assert names_one("circles", {"circle"}) and not names_one("what", {"circle"})


def test_a_hit_scores_one_minus_the_share_of_known_words_and_ties_split_it():
    hits = np.array([0.0, 1.0, 0.0, 1.0])
    assert pointing_above_chance(np.array([0.1, 0.9, 0.2, 0.3]), hits) == pytest.approx(0.5)
    assert pointing_above_chance(np.array([0.9, 0.1, 0.2, 0.3]), hits) == pytest.approx(-0.5)
    assert pointing_above_chance(np.array([0.9, 0.9, 0.2, 0.3]), hits) == pytest.approx(0.0)


def test_on_the_model_a_relevance_on_the_known_words_hits_and_random_sits_at_zero(
        trained_tiny):
    data = SyntheticDataset("test")
    recs = [data[i] for i in range(24)]
    questions = [r.question for r in recs]
    strings = trained_tiny.token_strings(trained_tiny.tokenize(questions))
    relevance = torch.full((len(recs), max(map(len, strings))), float("nan"))
    for i, (tokens, r) in enumerate(zip(strings, recs)):
        words = known_words(r.extra["program"])
        for t, token in enumerate(tokens[1:-1], start=1):  # [ENC] and [SEP] are not question
            relevance[i, t] = float(names_one(token, words)) + 0.01 * t
    metric = metrics.get("text_pointing_above_chance")
    oracle = metric(trained_tiny, None, questions, None, recs, token_relevance=relevance)
    assert (oracle.values > 0).all()
    draws = [metric(trained_tiny, None, questions, None, recs,
                    token_relevance=torch.where(torch.isnan(relevance), relevance, torch.rand(
                        relevance.shape, generator=torch.Generator().manual_seed(s)))).values
             for s in range(30)]
    assert abs(float(np.mean(draws))) < 0.05 < float(oracle.values.mean())
    with pytest.raises(NotApplicable, match="no question-token relevance"):
        metric(trained_tiny, None, questions, None, recs)
