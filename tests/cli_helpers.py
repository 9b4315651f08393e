"""What several CLI tests share: a small run and the one-line-error check."""
from benchmark.cli.main import main

SMALL = ["--models", "blip-itm-tiny@init", "--methods", "random,cross_attn_gradcam",
         "--metrics", "pointing_game,relevance_mass,deletion_auc", "--limit", "6",
         "--batch-size", "3", "--quiet", "--steps", "4"]


def one_line_error(capsys, argv, code=2):
    assert main(argv) == code
    err = [l for l in capsys.readouterr().err.splitlines() if l.strip()]
    assert len(err) == 1, err
    return err[0]


#: the tidy CSVs every run writes
CSVS = ("results.csv", "summary.csv", "curves.csv", "comparisons.csv", "sanity.csv")
