"""One run per folder at a time: a second process on a folder another is computing into is
refused with one line naming the other, and a killed run leaves no lock behind."""
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.fixtures.loader_helpers import in_process

ROOT = Path(__file__).resolve().parents[2]
RUN = ["--models", "blip-itm-tiny", "--methods", "random", "--metrics", "pointing_game",
       "--limit", "2", "--quiet", "--no-report"]
HOLD = ("import sys, time; from pathlib import Path; from benchmark.engine.run_lock import "
        "run_folder_lock\nwith run_folder_lock(Path(sys.argv[1]), 'python -m benchmark x'):\n"
        "    print('held', flush=True); time.sleep(600)")


def test_a_second_process_is_refused_until_the_first_is_killed(tmp_path, capsys):
    assert in_process(RUN + ["--out", tmp_path], capsys).returncode == 0
    before = (tmp_path / "results.csv").read_bytes()
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        for command in (RUN + ["--out", tmp_path], ["report", tmp_path]):
            p = in_process(command, capsys)
            assert p.returncode == 2
            line, = p.stderr.strip().splitlines()
            assert f"is in use by process {holder.pid} (python -m benchmark x" in line
        assert (tmp_path / "results.csv").read_bytes() == before
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    assert in_process(RUN + ["--out", tmp_path], capsys).returncode == 0  # no lock left behind
    assert in_process(["report", tmp_path], capsys).returncode == 0
