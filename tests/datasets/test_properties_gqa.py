"""Property-based tests of the GQA loader on generated releases in GQA's formats
(:mod:`tests.fixtures.gqa_release`): every run scores rows or stops with one line naming the file and
the record (exit 2); every target is the union of the boxes its question points to."""
from pathlib import Path

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from tests.fixtures.coco_release import ANSWERS
from tests.fixtures.gqa_release import BOXES, DEFECTS, TEXTS, Img, Release, write_release
from tests.fixtures.property_files import MODES, UNREADABLE, check_written

READABLE = [m for m in MODES if m not in UNREADABLE]
WELL_FORMED = [b for b, v in BOXES.items() if v is not None]

#: every well-formed case at once: an empty scene graph, every box kind, every readable mode,
#: 1-pixel and large images, unicode, empty and blank questions, integer and boolean answers,
#: a missing image file
EVERY_WELL_FORMED = Release([
    Img(boxes=[], questions=[(TEXTS[0], "str", 1)]),
    Img(h=1, w=1, boxes=WELL_FORMED, questions=[(TEXTS[1], "int", 2)]),
    Img(h=900, w=1200, mode="RGB.jpg", boxes=["partly outside"]),
    *[Img(h=6 + k, w=9, mode=m, boxes=WELL_FORMED[k:] + WELL_FORMED[:k],
          questions=[(TEXTS[k % 2], "bool", 2)]) for k, m in enumerate(READABLE)],
    Img(questions=[(t, "str", 1) for t in TEXTS]),
    Img(written=False)])
ILL_FORMED = {"box not numbers": Release([Img(boxes=["not numbers"])]),
              "answer list": Release([Img(questions=[(TEXTS[0], "list", 1)])]),
              **{f"image {m}": Release([Img(mode=m)]) for m in UNREADABLE},
              **{d: Release([Img()], defect=d) for d in DEFECTS},
              "every question excluded": Release([Img(written=False), Img(
                  questions=[("", "str", 0)])])}


def test_every_well_formed_case_scores(tmp_path):
    check_written(write_release(EVERY_WELL_FORMED, tmp_path / "data"), tmp_path, "gqa")


@pytest.mark.parametrize("case", sorted(ILL_FORMED))
def test_every_ill_formed_case_stops_with_one_line(case, tmp_path):
    check_written(write_release(ILL_FORMED[case], tmp_path / "data"), tmp_path, "gqa")


images = st.builds(
    Img, h=st.sampled_from([1, 6, 13]), w=st.sampled_from([1, 8, 17]),
    mode=st.sampled_from(READABLE * 6 + list(UNREADABLE)),
    written=st.sampled_from([True] * 5 + [False]),
    boxes=st.lists(st.sampled_from(WELL_FORMED * 12 + ["not numbers"]), max_size=3),
    questions=st.lists(st.tuples(st.sampled_from(TEXTS),
                                 st.sampled_from(["str"] * 12 + sorted(ANSWERS)),
                                 st.integers(0, 2)), min_size=1, max_size=2))
releases = st.builds(Release, st.lists(images, min_size=1, max_size=3),
                     st.sampled_from([None] * 12 + list(DEFECTS)), st.integers(0, 10**6))


@given(releases)
def test_generated_releases_score_or_stop_with_one_line(release):
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        code = check_written(write_release(release, Path(tmp) / "data"), Path(tmp), "gqa")
    event("scored" if code == 0 else "stopped with one line")
