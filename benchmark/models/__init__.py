"""Model registry: ``load(name)``, ``wrap(blip_itm)``, ``available()``, ``missing(name)``.

Embedded models (``blip-itm-tiny``, ``difnet-itm-tiny``) load their shipped checkpoint (verified
by sha256), or — for a configuration with no shipped checkpoint — the one ``python -m benchmark
train`` wrote into the user cache; loading never trains. Pretrained LAVIS models load from local disk only; :func:`missing` names
the file a user must provide.
"""
from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch

from benchmark.core.errors import InputError, MissingWeights
from benchmark.core.options import Option, parse_specs
from benchmark.models.protocol import VLModel
from benchmark.models.tensors import Preprocessing, state_hash
from benchmark.core.registry import Registry

REGISTRY = Registry("model", entry_point_group="vqa_xai_bench.models", package=__name__)
CHECKPOINT_DIR = Path(__file__).with_name("checkpoints")


def cache_dir() -> Path:
    """Where `python -m benchmark train` writes models that do not ship (``$VQA_XAI_BENCH_CACHE``
    overrides)."""
    root = os.environ.get("VQA_XAI_BENCH_CACHE") or Path.home() / ".cache" / "vqa-xai-bench"
    return Path(root) / "models"


#: run options a loader may declare it reads (``register(reads=...)``), from the run config
LOCAL_FILES = ("weights_dir", "tokenizer_dir")


def register(name: str, missing: Optional[Callable[..., Optional[str]]] = None,
             argument: Optional[str] = None, reads: Tuple[str, ...] = (),
             in_all: bool = True, options: Tuple[Option, ...] = ()):
    """Register a loader ``fn(**options) -> VLModel``; ``missing(**options)`` says what is
    absent (``None`` when the model can be loaded with those options).

    A loader with an ``argument`` (e.g. ``"PATH"``) is asked for as ``name:VALUE`` and called as
    ``fn(VALUE, **options)`` (``missing`` likewise); ``--models all`` leaves it out, and so it
    does a loader registered with ``in_all=False`` (e.g. a training-seed replicate, asked for by
    name). ``reads`` names the options of :data:`LOCAL_FILES` the loader takes
    (``--weights-dir``, ``--tokenizer-dir``); only those are passed to it. ``options``
    declares the loader's own settings (:class:`~benchmark.core.options.Option`, set with
    ``--model-option NAME.OPTION=VALUE``), passed to it and to ``missing`` as keywords.
    """
    unknown = sorted(set(reads) - set(LOCAL_FILES))
    if unknown:
        raise ValueError(f"model {name!r}: unknown option {unknown[0]!r} in reads")

    def deco(fn):
        fn.missing = missing or (lambda *_, **__: None)
        fn.argument = argument
        fn.reads = tuple(reads)
        fn.in_all = in_all and argument is None
        fn.options = tuple(options)
        REGISTRY.register(name, fn)
        return fn

    return deco


def _loader(spec: str) -> Tuple[Callable, tuple]:
    """The loader of a model spec ``name`` or ``name:VALUE`` and its positional arguments."""
    name, colon, value = spec.partition(":")
    fn = REGISTRY.get(name)
    if fn.argument and not value:
        raise InputError(f"model {name!r} needs {fn.argument}: ask for it as {name}:{fn.argument}")
    if colon and not fn.argument:
        raise InputError(f"model {name!r} takes no argument (got {spec!r}); ask for {name!r}")
    return fn, ((value,) if fn.argument else ())


def available() -> list:
    """Registered names; a loader with an argument as ``name:ARGUMENT``."""
    return [f"{n}:{REGISTRY.get(n).argument}" if REGISTRY.get(n).argument else n
            for n in REGISTRY.available()]


def resolve(spec: str) -> List[str]:
    """``"all"`` (every model that needs no argument) or ``"a,b:PATH"`` → validated specs."""
    names = [n.strip() for n in spec.split(",") if n.strip()]
    if names == ["all"]:
        return [n for n in REGISTRY.available() if getattr(REGISTRY.get(n), "in_all",
                                                           not REGISTRY.get(n).argument)]
    for n in names:
        _loader(n)
    return names


def parse_options(specs: Sequence[str]) -> Dict[str, Dict[str, Any]]:
    """``["my-model.width=64", ...]`` → ``{"my-model": {"width": 64}}``, each value parsed by
    the loader's declared option (one-line errors otherwise). A loader with an argument takes
    its options for every model it loads (``hf-llava.answer=yes``) or for one
    (``hf-llava:PATH.answer=yes``)."""
    return parse_specs(specs, "model", lambda n: REGISTRY.get(n.partition(":")[0]).options,
                       "MODEL.OPTION=VALUE")


def reads(name: str) -> Tuple[str, ...]:
    """The run options (:data:`LOCAL_FILES`) the loader of model spec ``name`` takes."""
    return _loader(name)[0].reads


def missing(name: str, **options) -> Optional[str]:
    """``None`` when ``name`` can run here, else one line naming the missing file and the fix."""
    fn, args = _loader(name)
    return fn.missing(*args, **options)


def load(name: str, device: str = "cpu", **options) -> VLModel:
    """Load a model spec (``name`` or ``name:VALUE``) behind the model protocol, in eval mode
    on ``device``."""
    fn, args = _loader(name)
    reason = fn.missing(*args, **options)
    if reason:
        raise MissingWeights(reason)
    return fn(*args, **options).eval().to(device)


def wrap(model, name: str = "wrapped", grid: Optional[tuple] = None,
         default_block: Optional[int] = None, answers=(), info: Optional[dict] = None,
         preprocessing: Optional[Preprocessing] = None,
         strip_question_mark: bool = False) -> VLModel:
    """A LAVIS ``BlipITM`` you built yourself behind the model protocol (the fused adapter when
    its visual encoder is a ``FusedVisualEncoder``; a LAVIS ``Blip2ITM`` gets the BLIP-2
    adapter, :func:`benchmark.models.blip2.wrap_blip2`).

    The patch grid is read from the ViT's ``patch_embed`` when not given; the default Grad-CAM
    block is PNP-VQA's 7 when the text encoder has 12 layers, else the same relative depth;
    preprocessing defaults to LAVIS's ``blip_image_eval`` at the ViT's input size; the
    fingerprint to the weights' hash. ``strip_question_mark``: questions are tokenised without
    their "?", as PNP-VQA's ``forward_itm`` hands them to LAVIS's ITM model.
    """
    from benchmark.models.blip import BlipAdapter, blip_preprocessing, patch_grid
    from benchmark.models.difnet import FusedVisualEncoder
    from benchmark.models.fused import FusedBlipAdapter

    if hasattr(model, "Qformer"):  # BLIP-2
        from benchmark.models.blip2 import wrap_blip2

        return wrap_blip2(model, name, default_block, info)
    fused = isinstance(model.visual_encoder, FusedVisualEncoder)
    vit = model.visual_encoder.vit if fused else model.visual_encoder
    if grid is None:
        if getattr(vit, "patch_embed", None) is None:
            raise ValueError("cannot infer the patch grid of this model; pass grid=(gh, gw)")
        grid = patch_grid(vit)
    n_layers = len(model.text_encoder.encoder.layer)
    block = default_block if default_block is not None else (7 * n_layers) // 12
    if preprocessing is None:
        size = vit.patch_embed.img_size
        preprocessing = blip_preprocessing(int(size[0] if isinstance(size, (tuple, list)) else size))
    if info is None:
        info = {"fingerprint": state_hash(model)}
    cls = FusedBlipAdapter if fused else BlipAdapter
    return cls(model, name, tuple(grid), block, preprocessing, answers, info,
               strip_question_mark=strip_question_mark)


def read_checkpoint_meta(name: str) -> Optional[dict]:
    path = CHECKPOINT_DIR / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def state_bytes(model: torch.nn.Module) -> bytes:
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.getvalue()


get = REGISTRY.get
__all__ = ["load", "wrap", "available", "missing", "register", "MissingWeights", "VLModel"]
