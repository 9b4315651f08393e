"""The overall progress bar: its total is every map of the run, the sanity checks' included,
and it ends full — on a fresh run, with an untrained model whose sanity checks do not run, and
on a resumed one."""
import contextlib
import io

import pytest

import methods
from benchmark.engine import progress, runner
from benchmark.cli.main import main
from benchmark.core.errors import InputError
from methods.base import Attribution
from benchmark.cli.main import run_config
from benchmark.cli.args import run_parser
import metrics

RUN = ["--models", "blip-itm-tiny,blip-itm-tiny@init", "--methods", "random,gradient_x_input,oracle",
       "--metrics", "pointing_game,random_logit", "--limit", "4", "--batch-size", "2",
       "--sanity-samples", "2"]


def test_the_overall_bar_counts_the_sanity_checks_and_ends_full(tmp_path, monkeypatch):
    bars = []

    class Recorded(progress.RunProgress):
        def __init__(self, total, done=0, enabled=True):
            super().__init__(total, done, enabled)
            self.start = (total, done)
            bars.append(self)

        def close(self):
            self.end = (self.overall.n, self.overall.total)
            super().close()

    monkeypatch.setattr(runner, "RunProgress", Recorded)
    cfg = run_config(run_parser().parse_args(RUN))
    runner.run(cfg, tmp_path, progress=True)
    maps = 2 * 3 * 4  # models × methods × questions
    sanity = 2 * metrics.get("random_logit").nominal_maps  # per trained model and non-oracle method
    assert bars[0].start == (maps + 2 * 2 * sanity, 0)  # both models counted until loaded
    assert bars[0].end == (maps + 2 * sanity, maps + 2 * sanity)  # @init's share taken out
    runner.run(cfg, tmp_path, progress=True)  # everything cached: full from the start
    assert bars[1].start[1] == maps + 2 * sanity and bars[1].end[0] == bars[1].end[1]


class _Stops(Attribution):
    """A method that stops the run at its first batch, as a bad checkpoint or Ctrl-C would."""

    def __init__(self, error=None, **options):
        super().__init__(**options)
        self.error = error

    def with_options(self, **options):
        return self

    def attribute(self, model, images, questions):
        raise self.error


@pytest.mark.parametrize("error, line, code", [
    (InputError("checkpoint x.pth is not a base checkpoint — re-download it"),
     "error: checkpoint x.pth is not a base checkpoint — re-download it", 2),
    (KeyboardInterrupt(), "interrupted; results computed so far are kept (run the same "
     "command to resume)", 130)])
def test_an_error_or_interruption_mid_run_is_on_a_line_of_its_own(error, line, code, tmp_path,
                                                                   monkeypatch):
    """The bars are closed before the message: it starts a line, and nothing is drawn after
    it (the terminal used to show ``run: 50%|… error: …`` and then the bar again)."""
    monkeypatch.setitem(methods.REGISTRY._items, "stops", _Stops(error))
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        got = main(["--models", "blip-itm-tiny", "--methods", "random,stops", "--metrics",
                    "pointing_game", "--limit", "4", "--out", str(tmp_path), "--no-report"])
    assert got == code
    text = err.getvalue()
    assert "run:  50%" in text  # the bar was drawn before the stop
    assert text.endswith("\n" + line + "\n"), repr(text[-200:])
