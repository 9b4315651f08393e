"""What the property-based loader tests share: images written in every form real releases
hold (with what a correct reader returns for each), and the two outcomes a run on
awkward files may have — rows for every question, or one line naming the file and the record,
exit status 2.

The hypothesis profile is ``ci`` (derandomised, a fixed set of examples, so CI is
reproducible and bounded); ``VQA_XAI_BENCH_HYPOTHESIS=explore`` draws many more, at random.
"""
from __future__ import annotations

import contextlib
import csv
import io
import os
import struct
import zlib
from pathlib import Path
from typing import Dict, Iterable, Optional, Sequence, Tuple

import numpy as np
from hypothesis import HealthCheck, settings

from benchmark.core.errors import ExcludedSample, InputError

settings.register_profile("ci", max_examples=8, deadline=None, derandomize=True,
                          database=None, suppress_health_check=list(HealthCheck))
settings.register_profile("explore", max_examples=300, deadline=None, database=None,
                          suppress_health_check=list(HealthCheck))
settings.load_profile(os.environ.get("VQA_XAI_BENCH_HYPOTHESIS", "ci"))

#: how an image file may be stored: PNG (lossless) or JPEG in a PIL mode; ``exif``: a JPEG
#: whose EXIF orientation asks for a 90° turn (the stored pixels are what annotations are
#: drawn on); ``huge``: a PNG header announcing 40000 × 40000 pixels; ``corrupt``: a JPEG cut
#: off after its first bytes
MODES = ("RGB.png", "RGB.jpg", "L.jpg", "CMYK.jpg", "P.png", "I;16.png", "RGBA.png",
         "exif.jpg", "huge.png", "corrupt.jpg")
#: modes whose file does not decode to an image: the run stops with one line naming it
UNREADABLE = ("huge.png", "corrupt.jpg")


def _png_header(w: int, h: int) -> bytes:
    """A PNG signature and header chunk announcing w × h RGB pixels, and no pixel data."""
    body = b"IHDR" + struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + body
            + struct.pack(">I", zlib.crc32(body)))


def write_image(path: Path, rgb: np.ndarray, mode: str) -> Optional[np.ndarray]:
    """Write ``rgb`` (H, W, 3 uint8) at ``path`` in ``mode``; return the (H, W, 3) array a
    correct reader decodes from a lossless file (``None`` for JPEG, lossy, and for files that
    do not decode)."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    kind, fmt = mode.rsplit(".", 1)
    if mode == "huge.png":
        path.write_bytes(_png_header(40000, 40000))
        return None
    if mode == "corrupt.jpg":
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, format="JPEG")
        path.write_bytes(buf.getvalue()[:20])
        return None
    im = Image.fromarray(rgb)
    if kind == "I;16":
        gray = rgb[..., 0].astype(np.uint16) * 257  # the full 16-bit range
        Image.fromarray(gray).save(path, format="PNG")
        return np.repeat(rgb[..., :1], 3, axis=2)
    if kind == "exif":
        exif = Image.Exif()
        exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
        im.save(path, format="JPEG", exif=exif, quality=95)
        return None
    converted = im.convert(kind, dither=Image.Dither.NONE) if kind == "P" else im.convert(kind)
    converted.save(path, format="PNG" if fmt == "png" else "JPEG", quality=95)
    return None if fmt == "jpg" else np.asarray(converted.convert("RGB"))


def check_image(decoded: np.ndarray, expected: Optional[np.ndarray], shape: Tuple[int, int]):
    """A decoded image is (H, W, 3) uint8 at the file's stored size, equal to the lossless
    original where there is one."""
    assert decoded.dtype == np.uint8 and decoded.shape == (*shape, 3)
    if expected is not None:
        assert np.array_equal(decoded, expected)


def run_cli(root: Path, out: Path, dataset: str, *extra: str) -> Tuple[int, str]:
    """The CLI in this process on ``root`` (two methods, two localisation metrics and a
    two-step deletion on the shipped tiny model): its exit status and what it wrote on
    stderr."""
    from benchmark.cli.main import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["--models", "blip-itm-tiny", "--dataset", dataset, "--data-root",
                     str(root), "--methods", "random,cross_attn_gradcam", "--metrics",
                     "pointing_game,relevance_rank,deletion_auc", "--steps", "2",
                     "--no-report", "--quiet", "--out", str(out), *extra])
    return code, err.getvalue()


def assert_outcome(code: int, stderr: str, out: Path, errors: Iterable[Tuple[str, str]],
                   notes: Dict[str, str], sample_ids: Sequence[str]) -> None:
    """Either the run stopped with exit 2 and one line naming one of the ``errors`` (file name,
    record), or — when none was expected — it wrote rows for every sample, those in ``notes``
    excluded with that note."""
    errors = list(errors)
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    if errors:
        assert code == 2, (code, stderr)
        assert len(lines) == 1 and lines[0].startswith("error: "), stderr
        assert any(f in lines[0] and r in lines[0] for f, r in errors), (lines[0], errors)
        return
    assert code == 0, stderr
    rows = list(csv.DictReader((out / "results.csv").open(encoding="utf-8")))
    assert {r["sample_id"] for r in rows} == set(sample_ids)
    for r in rows:
        if r["sample_id"] in notes:
            assert r["value"] == "" and notes[r["sample_id"]] in r["note"], r
    scored = {r["sample_id"] for r in rows if r["value"] != ""}
    assert scored == set(sample_ids) - set(notes)


def read_all(root: Path, dataset: str = "vqav2") -> dict:
    """Every record by sample id (an excluded sample: its exception)."""
    import datasets

    data = datasets.get(dataset)(data_root=str(root))
    out = {}
    for i in range(len(data)):
        try:
            r = data[i]
            out[r.sample_id] = r
        except ExcludedSample as e:
            out[e.sample_id] = e
    return out


def check_written(exp, tmp: Path, dataset: str) -> int:
    """The loader's records of ``tmp / "data"`` against what its files mean (``exp``, a
    :class:`tests.coco_release.Expected`), then the outcome of a run on them; returns the
    run's exit status."""
    try:
        records = read_all(tmp / "data", dataset)
    except InputError as e:
        assert exp.errors and "\n" not in str(e), (e, exp.errors)
        assert any(f in str(e) and r in str(e) for f, r in exp.errors), (e, exp.errors)
    else:
        assert not exp.errors, exp.errors
        for sid, target in exp.targets.items():
            r = records[sid]
            assert np.array_equal(r.target_mask, target), sid
            for region in (r.distractor_mask, r.control):
                assert region.shape == target.shape and not (region & target).any()
            check_image(r.image, *exp.images[sid])
            assert set(r.answers) == {exp.answers[sid]}
        for sid, note in exp.notes.items():
            assert isinstance(records[sid], ExcludedSample) and note in records[sid].note
    code, err = run_cli(tmp / "data", tmp / "run", dataset)
    assert_outcome(code, err, tmp / "run", exp.errors + exp.run_errors, exp.notes,
                   exp.sample_ids)
    return code
