"""Question-token perturbation: tokens leave the attention mask in relevance order."""
import numpy as np
import pytest
import torch

import metrics
from benchmark.core.errors import NotApplicable
from metrics.text_perturbation import removal_masks


def test_removal_order_follows_relevance_and_keeps_special_tokens():
    nan = float("nan")
    relevance = torch.tensor([[nan, 0.1, 0.9, 0.5, 0.3, nan, nan]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 1, 0]])
    most = removal_masks(relevance, mask, 4, True, ["s"], 0)
    assert most[0, 0].tolist() == [1, 1, 1, 1, 1, 1, 0]
    assert most[0, 1].tolist() == [1, 1, 0, 1, 1, 1, 0]  # 0.9 first
    assert most[0, 2].tolist() == [1, 1, 0, 0, 1, 1, 0]
    assert most[0, 4].tolist() == [1, 0, 0, 0, 0, 1, 0]  # [ENC], [SEP] stay; padding stays 0
    least = removal_masks(relevance, mask, 4, False, ["s"], 0)
    assert least[0, 1].tolist() == [1, 0, 1, 1, 1, 1, 0]  # 0.1 first
    ties = torch.tensor([[nan, 1.0, 1.0, 1.0, 1.0, nan, nan]])
    orders = {tuple(removal_masks(ties, mask, 4, True, [s], 0)[0, 1].tolist())
              for s in "abcdefgh"}
    assert len(orders) > 1  # ties: a seeded order per sample, not left to right


def test_curves_on_a_trained_model_and_methods_without_token_relevance(trained_tiny):
    """Grad-CAM's token relevance against its reverse, on the plain baseline: both curves
    start at the question as it is and end with every question token removed; removing the
    most relevant first lowers the match faster on average."""
    import methods
    from benchmark.engine.batch_inputs import images as _images
    from datasets.loader_synthetic import SyntheticDataset

    data = SyntheticDataset("test")
    recs = [r for r in (data[i] for i in range(40)) if r.extra.get("itm_label", 1) == 1][:16]
    images, questions = _images(recs, trained_tiny), [r.question for r in recs]
    out = methods.get("cross_attn_gradcam").explain(trained_tiny, images, questions)
    metric = metrics.get("text_deletion_auc")
    maps = out.maps
    good = metric(trained_tiny, images, questions, maps, recs, token_relevance=out.tokens)
    bad = metric(trained_tiny, images, questions, maps, recs, token_relevance=-out.tokens)
    with torch.no_grad():
        whole = trained_tiny.match_probability(images, questions).double().numpy()
    assert np.allclose(good.curves[:, 0], whole, atol=1e-5)
    assert np.allclose(good.curves[:, -1], bad.curves[:, -1], atol=1e-6)
    assert good.values.mean() < bad.values.mean()
    with pytest.raises(NotApplicable, match="no question-token relevance"):
        metric(trained_tiny, images, questions, maps, recs)


def test_the_accuracy_curve_starts_at_the_models_own_answer_and_reads_every_question(
        trained_tiny):
    """text_deletion_accuracy_auc: point 0 is the accuracy of the answer the model gives to the
    whole question; with every question token gone the answer no longer depends on the
    order; questions that do not match their image count too."""
    import methods
    from benchmark.engine.batch_inputs import images as _images
    from datasets.loader_synthetic import SyntheticDataset
    from metrics.vqa import exact_match

    recs = [SyntheticDataset("test")[i] for i in range(16)]
    images, questions = _images(recs, trained_tiny), [r.question for r in recs]
    out = methods.get("cross_attn_gradcam").explain(trained_tiny, images, questions)
    metric = metrics.get("text_deletion_accuracy_auc")
    assert not metric.needs_match and metric.needs_answers and not metric.higher_is_better
    good = metric(trained_tiny, images, questions, out.maps, recs, token_relevance=out.tokens,
                  scorer=exact_match)
    bad = metric(trained_tiny, images, questions, out.maps, recs, token_relevance=-out.tokens,
                 scorer=exact_match)
    answers = trained_tiny.predict_answers(images, questions)
    assert good.curves[:, 0].tolist() == [exact_match(a, r.answers)
                                          for a, r in zip(answers, recs)]
    assert set(np.unique(good.curves)) <= {0.0, 1.0}
    assert np.array_equal(good.curves[:, -1], bad.curves[:, -1])
    assert good.curves[:, 0].mean() > good.curves[:, -1].mean()  # the words carry the answer
