"""Every registered method and metric runs end to end on the fused primary model (one question):
a new plugin is covered here without touching the golden numbers, which pin a fixed list."""
import pandas as pd

import methods
from benchmark.cli.main import dataset_metrics


def test_every_method_gives_rows(layering_run):
    _, out = layering_run
    ran = set(pd.read_csv(out / "results.csv").method)
    assert set(methods.available()) <= ran, set(methods.available()) - ran


def test_every_metric_of_the_dataset_gives_a_value(layering_run):
    _, out = layering_run
    rows, sanity = pd.read_csv(out / "results.csv"), pd.read_csv(out / "sanity.csv")
    modality = pd.read_csv(out / "modality.csv")
    valued = set(rows[rows.value.notna()].metric) | set(sanity[sanity.n > 0].test) | \
        set(modality[modality.t_shap.notna()].metric)
    missing = set(dataset_metrics("all", "synthetic")) - valued
    assert not missing, f"no value from {sorted(missing)}"


def test_the_run_writes_its_report(layering_run):
    _, out = layering_run
    assert (out / "index.html").stat().st_size > 0 and (out / "tables.tex").exists()


def test_question_token_relevance_lands_in_tokens_csv_and_the_gallery(layering_run):
    _, out = layering_run
    tokens = pd.read_csv(out / "tokens.csv", keep_default_na=False)
    # (IG's token rows: tests/engine/test_plan.py; here its 16-node maps do not converge)
    assert {"cross_attn_gradcam", "chefer_relevance", "random", "raw_attention",
            "lrp"} <= set(tokens.method)
    results = pd.read_csv(out / "results.csv")
    question = results.iloc[0]["sample_id"]
    words = tokens[(tokens.method == "cross_attn_gradcam") & (tokens.sample_id == question)]
    assert len(words) >= 3 and words.position.min() == 1  # [ENC] at 0 is not a question token
    assert not {"[ENC]", "[SEP]", "[PAD]"} & set(words.token)
    html = (out / "index.html").read_text()
    assert html.count('class="words" data-method="chefer_relevance"') >= 1
    assert 'id="modality"' in html and 'id="agreement"' in html
