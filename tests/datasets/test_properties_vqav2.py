"""Property-based tests of the VQA v2 + COCO loader on generated releases in the official
formats (:mod:`tests.fixtures.coco_release`): every run scores rows or stops with one line naming the
file and the record (exit 2), never a traceback; every mask equals what its file means."""
from pathlib import Path

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from tests.fixtures.coco_release import (ANSWERS, CATEGORIES, DEFECTS, FORMS, MALFORMED, TEXTS, Img,
                                Obj, Question, Release, write_release)
from tests.fixtures.property_files import MODES, UNREADABLE, check_written

WELL_FORMED = [f for f in FORMS if f not in MALFORMED]
READABLE = [m for m in MODES if m not in UNREADABLE]


def check_release(release: Release, tmp: Path) -> int:
    """:func:`check_written` on ``release`` written in VQA v2's layout."""
    return check_written(write_release(release, tmp / "data"), tmp, "vqav2")


#: one release with every well-formed case at once: an image without objects, every readable
#: storage mode, a 1-pixel and a 1200 × 1600 image, every well-formed segmentation (crowds
#: included), unicode, empty and blank questions, integer and boolean answers, a missing file
EVERY_WELL_FORMED = Release([
    Img(objects=[]),
    Img(h=1, w=1, objects=[Obj("cat", "rle"), Obj("cat", "polygon")]),
    Img(h=1200, w=1600, mode="RGB.jpg", objects=[Obj("kite", "rle_string", 1)],
        questions=[Question(TEXTS[0], "kite")]),
    *[Img(h=7 + k, w=11, mode=m, objects=[Obj("cat", f, k % 2) for f in WELL_FORMED])
      for k, m in enumerate(READABLE)],
    Img(questions=[Question(t, "cat", a) for t, a in zip(TEXTS, ["int", "bool", "str"] * 2)]),
    Img(written=False, questions=[Question()]),
])
#: one release per ill-formed case (each stops the run)
ILL_FORMED = {**{f"segmentation {f}": Release([Img(objects=[Obj(form=f)])]) for f in MALFORMED},
              **{f"image {m}": Release([Img(mode=m)]) for m in UNREADABLE},
              "answer list": Release([Img(questions=[Question(answer="list")])]),
              **{d: Release([Img(objects=[Obj()])], defect=d) for d in DEFECTS},
              "every question excluded": Release([Img(written=False), Img(
                  questions=[Question("")])])}


def test_every_well_formed_case_scores(tmp_path):
    check_release(EVERY_WELL_FORMED, tmp_path)


@pytest.mark.parametrize("case", sorted(ILL_FORMED))
def test_every_ill_formed_case_stops_with_one_line(case, tmp_path):
    check_release(ILL_FORMED[case], tmp_path)


images = st.builds(
    Img, h=st.sampled_from([1, 5, 16]), w=st.sampled_from([1, 9, 20]),
    mode=st.sampled_from(READABLE * 6 + list(UNREADABLE)),
    written=st.sampled_from([True] * 5 + [False]),
    objects=st.lists(st.builds(Obj, st.sampled_from(sorted(CATEGORIES.values())),
                               st.sampled_from(WELL_FORMED * 8 + list(MALFORMED)),
                               st.sampled_from([0, 0, 1])), max_size=3),
    questions=st.lists(st.builds(Question, st.sampled_from(TEXTS),
                                 st.sampled_from(sorted(CATEGORIES.values())),
                                 st.sampled_from(["str"] * 12 + sorted(ANSWERS))),
                       min_size=1, max_size=2))
releases = st.builds(Release, st.lists(images, min_size=1, max_size=3),
                     st.sampled_from([None] * 12 + list(DEFECTS)), st.integers(0, 10**6))


@given(releases)
def test_generated_releases_score_or_stop_with_one_line(release):
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        code = check_release(release, Path(tmp))
    event("scored" if code == 0 else "stopped with one line")
