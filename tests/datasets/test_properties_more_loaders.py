"""Property-based tests of the CLEVR-XAI and VQA-HAT loaders and of the synthetic export
(:mod:`tests.fixtures.clevrxai_release`, :mod:`tests.fixtures.coco_release`): every run scores rows or stops with
one line naming the file and the record (exit 2); every mask and human map equals what its
files mean."""
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from tests.fixtures import clevrxai_release as cx
from tests.fixtures.coco_release import Img, Obj, Question, Release
from tests.fixtures.coco_release import write_release as write_coco
from tests.fixtures.property_files import MODES, UNREADABLE, check_written, read_all, write_image

READABLE = [m for m in MODES if m not in UNREADABLE]

# ------------------------------------------------------------------ CLEVR-XAI
CLEVR_EVERY_WELL_FORMED = cx.Release([
    cx.Img(questions=[cx.Question(m, a) for m, a in zip(
        [m for m in cx.MASKS if m not in cx.MALFORMED], ["str", "int", "bool"] * 2)]),
    cx.Img(h=1, w=1, questions=[cx.Question("128")]),
    cx.Img(h=320, w=480, mode="RGB.jpg", questions=[cx.Question("128")]),
    *[cx.Img(mode=m) for m in READABLE], cx.Img(written=False)])
CLEVR_ILL_FORMED = {**{f"mask {m}": cx.Release([cx.Img(questions=[cx.Question(m)])])
                       for m in cx.MALFORMED},
                    **{f"answer {a}": cx.Release([cx.Img(questions=[cx.Question(answer=a)])])
                       for a in ("list", "null")},
                    **{f"image {m}": cx.Release([cx.Img(mode=m)]) for m in UNREADABLE},
                    "question index repeated": cx.Release([cx.Img()], repeated_index=True),
                    "every image missing": cx.Release([cx.Img(written=False)])}


def test_clevrxai_every_well_formed_case_scores(tmp_path):
    exp = cx.write_release(CLEVR_EVERY_WELL_FORMED, tmp_path / "data")
    check_written(exp, tmp_path, "clevrxai")


@pytest.mark.parametrize("case", sorted(CLEVR_ILL_FORMED))
def test_clevrxai_every_ill_formed_case_stops_with_one_line(case, tmp_path):
    check_written(cx.write_release(CLEVR_ILL_FORMED[case], tmp_path / "data"), tmp_path,
                  "clevrxai")


clevr_releases = st.builds(cx.Release, st.lists(st.builds(
    cx.Img, h=st.sampled_from([1, 7, 15]), w=st.sampled_from([1, 10, 18]),
    mode=st.sampled_from(READABLE * 6 + list(UNREADABLE)),
    written=st.sampled_from([True] * 5 + [False]),
    questions=st.lists(st.builds(cx.Question, st.sampled_from(
        [m for m in cx.MASKS if m not in cx.MALFORMED] * 6 + list(cx.MALFORMED)),
        st.sampled_from(["str"] * 12 + sorted(cx.ANSWERS)),
        st.sampled_from(["Is there a cube?", "Y a-t-il un cube ☃ ?"])), min_size=1,
        max_size=2)), min_size=1, max_size=3),
    st.sampled_from([False] * 12 + [True]), st.integers(0, 10**6))


@given(clevr_releases)
def test_clevrxai_generated_releases_score_or_stop_with_one_line(release):
    with tempfile.TemporaryDirectory() as tmp:
        code = check_written(cx.write_release(release, Path(tmp) / "data"), Path(tmp),
                             "clevrxai")
    event("scored" if code == 0 else "stopped with one line")


# ------------------------------------------------------------------ VQA-HAT
HAT_MODES = ("L.png", "RGB.jpg", "I;16.png", "P.png", "RGBA.png")


def write_hat(root: Path, maps: list) -> dict:
    """A VQA v1 release of one image whose first question has the annotator maps ``maps``
    ((mode, height, width, grey level) each); returns question id → the human map a correct
    reader gives (each map's grey level / 255, everywhere)."""
    write_coco(Release([Img(objects=[Obj()], questions=[Question(), Question()])]), root,
               version=1)
    levels = []
    for k, (mode, h, w, level) in enumerate(maps, start=1):
        rgb = np.full((h, w, 3), level, np.uint8)
        stored = write_image(root / "vqahat_val" / f"11_{k}.png", rgb, mode)
        levels.append(level if stored is None else stored.mean())  # a palette rounds it
    return {"11": np.full((14, 14), np.mean(levels) / 255)}


@given(st.lists(st.tuples(st.sampled_from(HAT_MODES), st.sampled_from([1, 5, 40]),
                          st.sampled_from([1, 9, 60]), st.integers(0, 255)),
                min_size=1, max_size=3))
def test_vqahat_human_maps_of_every_mode_and_size(maps):
    with tempfile.TemporaryDirectory() as tmp:
        expected = write_hat(Path(tmp) / "data", maps)
        records = read_all(Path(tmp) / "data", "vqahat")
        assert set(records) == set(expected)  # only questions with maps
        for sid, human in expected.items():
            tolerance = 2 / 255 if any(m[0].endswith(".jpg") for m in maps) else 1e-6
            assert np.abs(records[sid].extra["human_map"] - human).max() <= tolerance


# ------------------------------------------------------------------ synthetic export
@given(st.integers(0, 10**6), st.integers(1, 4))
def test_the_synthetic_export_reads_back_as_generated(seed, n):
    from datasets import synthetic as syn
    from datasets.export import export_vqav2

    with tempfile.TemporaryDirectory() as tmp:
        root = export_vqav2(Path(tmp), n=n, seed=seed)
        records = read_all(root)
        for i in range(n):
            s = syn.generate(seed, "test", i)
            r = records[str((i + 1) * 10)]
            assert np.array_equal(r.target_mask, s.target_mask)
            assert r.question == s.question and r.answers == list(s.answers)
            assert np.abs(r.image.astype(int) - s.image).mean() < 8  # JPEG
