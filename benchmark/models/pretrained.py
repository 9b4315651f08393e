"""Pretrained LAVIS BLIP-ITM models, from local disk only (nothing is downloaded).

The architecture is built from LAVIS's own model configs (``blip_itm_base.yaml``,
``blip_itm_large.yaml``: ViT-B/16 or ViT-L/16 at 384 px, BERT base with cross-attention) and the
fine-tuned checkpoint is read from ``--weights-dir DIR`` or from where LAVIS's
``download_cached_file`` looks first, ``$TORCH_HOME/hub/checkpoints/``. The BERT tokenizer is
``bert-base-uncased`` from the Hugging Face cache, or ``--tokenizer-dir DIR`` (a folder with its
``vocab.txt``), read offline.

LAVIS loads checkpoints with ``load_state_dict(strict=False)`` and only logs what did not match,
so a checkpoint of another architecture leaves a silently random model. Here every key is
compared: anything missing or unexpected beyond what LAVIS's retrieval checkpoints are known to
carry (:data:`IGNORED_KEYS`) is a one-line error naming the first keys.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable, Optional

import torch
from torch import nn

from benchmark.core.errors import InputError
from benchmark.models import LOCAL_FILES, register, wrap
from benchmark.core.errors import MissingWeights
from benchmark.models.blip import with_blip_tokens
from benchmark.models.tensors import state_hash

#: registry name → (LAVIS ``vit_type``, checkpoint file name in LAVIS's model zoo); PNP-VQA's
#: own ITM model is the large one fine-tuned on COCO train2014 only (``pnp_vqa_*.yaml``)
CHECKPOINTS = {
    "blip-itm-base": ("base", "model_base_retrieval_coco.pth"),
    "blip-itm-large": ("large", "model_large_retrieval_coco.pth"),
    "blip-itm-large-train2014": ("large", "model_large_retrieval_coco_train2014.pth"),
}
#: keys of LAVIS's retrieval checkpoints that ``BlipITM`` has no module for: the momentum
#: encoders and projections (``*_m``), the feature queues and the contrastive temperature
IGNORED_KEYS = re.compile(r"^[A-Za-z_]+_m\.|^(image|text|idx|ptr)_queue$|^temp$")
#: buffers a checkpoint may lack (recomputed by the module: BERT's position ids)
OPTIONAL_KEYS = re.compile(r"(^|\.)position_ids$")
HF_TOKENIZER = "bert-base-uncased"


def torch_checkpoint_dir() -> Path:
    """Where LAVIS's ``download_cached_file`` looks first: ``$TORCH_HOME/hub/checkpoints``."""
    home = os.environ.get("TORCH_HOME") or Path.home() / ".cache" / "torch"
    return Path(home) / "hub" / "checkpoints"


def checkpoint_path(filename: str, weights_dir: Optional[str] = None) -> Path:
    """``weights_dir/filename`` when a folder is given, else LAVIS's cache location."""
    return (Path(weights_dir) if weights_dir else torch_checkpoint_dir()) / filename


def offline_bert_tokenizer(tokenizer_dir: Optional[str] = None):
    """``bert-base-uncased``'s tokenizer, read offline from ``tokenizer_dir`` or the Hugging
    Face cache (:class:`MissingWeights` saying where it was looked for otherwise)."""
    from transformers import BertTokenizer

    source = str(tokenizer_dir) if tokenizer_dir else HF_TOKENIZER
    try:
        return BertTokenizer.from_pretrained(source, local_files_only=True)
    except (OSError, ValueError) as e:
        where = (f"no vocab.txt in {tokenizer_dir}" if tokenizer_dir else
                 f"{HF_TOKENIZER} is not in the Hugging Face cache")
        raise MissingWeights(f"BERT tokenizer not found offline: {where} (copy {HF_TOKENIZER}'s "
                             "tokenizer files into a folder and pass --tokenizer-dir DIR)") from e


def bert_tokenizer(tokenizer_dir: Optional[str] = None):
    """``bert-base-uncased`` as LAVIS's ``BlipBase.init_tokenizer`` makes it (``[DEC]`` as bos,
    ``[ENC]`` added), read offline from ``tokenizer_dir`` or the Hugging Face cache."""
    return with_blip_tokens(offline_bert_tokenizer(tokenizer_dir))


def _missing(filename: str, how: str, weights_dir: Optional[str] = None,
             tokenizer_dir: Optional[str] = None, **_) -> Optional[str]:
    path = checkpoint_path(filename, weights_dir)
    if not path.exists():
        where = "--weights-dir" if weights_dir else "TORCH_HOME or pass --weights-dir DIR"
        return f"weights not on disk: {path} ({how}, or set {where})"
    try:
        bert_tokenizer(tokenizer_dir)
    except MissingWeights as e:
        return str(e)
    return None


def build_lavis(model_cls: type, config: str, tokenizer, vit_depth: Optional[int] = None,
                text_layers: Optional[int] = None, seed: int = 0) -> nn.Module:
    """A LAVIS BLIP model of class ``model_cls`` from LAVIS's model config file ``config`` (in
    ``lavis/configs/models``) with random weights (seeded) and ``tokenizer``, keeping the first
    ``vit_depth`` ViT blocks and ``text_layers`` BERT layers when given (reduced-depth variants
    of the same architecture); nothing is downloaded or loaded."""
    from lavis.common.registry import registry
    from omegaconf import OmegaConf

    class Offline(model_cls):
        @classmethod
        def init_tokenizer(cls):
            return tokenizer

        def load_checkpoint_from_config(self, cfg, **kwargs):
            pass  # weights are loaded, with every key checked, by load_checkpoint

    Offline.__name__ = Offline.__qualname__ = f"Offline{model_cls.__name__}"
    root = Path(registry.get_path("library_root"))
    cfg = OmegaConf.load(root / "configs" / "models" / config).model
    cfg.vit_grad_ckpt = False  # gradient checkpointing is a training setting
    torch.manual_seed(seed)
    model = Offline.from_config(cfg)
    if vit_depth is not None:
        model.visual_encoder.blocks = model.visual_encoder.blocks[:vit_depth]
    if text_layers is not None:
        text = model.text_encoder if hasattr(model, "text_encoder") else model.text_decoder.bert
        text.encoder.layer = text.encoder.layer[:text_layers]
        text.encoder.config.num_hidden_layers = text_layers
    return model.eval()


def build_blip_itm(vit_type: str, tokenizer, vit_depth: Optional[int] = None,
                   text_layers: Optional[int] = None, seed: int = 0) -> nn.Module:
    """LAVIS ``BlipITM`` of LAVIS's config for ``vit_type`` (``"base"`` or ``"large"``), random
    weights (see :func:`build_lavis`)."""
    from lavis.models.blip_models.blip_image_text_matching import BlipITM

    return build_lavis(BlipITM, f"blip_itm_{vit_type}.yaml", tokenizer, vit_depth, text_layers,
                       seed)


def load_checkpoint(model: nn.Module, path: Path, architecture: str,
                    optional: re.Pattern = OPTIONAL_KEYS) -> None:
    """Load a LAVIS checkpoint (``{"model": state_dict}`` or a bare state dict) into ``model``,
    refusing one whose keys or shapes are not those of ``model`` (see :data:`IGNORED_KEYS`);
    keys of ``model`` matching ``optional`` may be absent (they keep their values)."""
    try:
        checkpoint = torch.load(path, map_location="cpu")
    except Exception as e:  # a truncated or foreign file: say which one
        raise InputError(f"cannot read checkpoint {path}: {e}") from e
    state = checkpoint.get("model", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise InputError(f"checkpoint {path} holds no state dict (expected a LAVIS checkpoint)")
    expected = model.state_dict()
    # in the modules' order, so the first keys named show where the architectures part
    missing = [k for k in expected if k not in state and not optional.search(k)]
    unexpected = [k for k in state if k not in expected and not IGNORED_KEYS.search(k)]
    shapes = [k for k in state if k in expected and state[k].shape != expected[k].shape]
    problems = [f"{len(keys)} {what} (first: {', '.join(keys[:3])})" for what, keys in
                (("keys missing", missing), ("unexpected keys", unexpected),
                 ("keys of another shape", shapes)) if keys]
    if problems:
        raise InputError(f"checkpoint {path} is not a {architecture} checkpoint: "
                         f"{'; '.join(problems)} — LAVIS would leave those weights random; use "
                         f"the checkpoint made for {architecture}")
    model.load_state_dict({k: v for k, v in state.items() if k in expected}, strict=False)


def _blip_loader(name: str, vit_type: str, filename: str, vit_depth: Optional[int] = None,
                 text_layers: Optional[int] = None, fusion: Optional[dict] = None) -> Callable:
    def load(weights_dir: Optional[str] = None, tokenizer_dir: Optional[str] = None, **_):
        model = build_blip_itm(vit_type, bert_tokenizer(tokenizer_dir), vit_depth, text_layers)
        what = f"BLIP-ITM {vit_type}, {len(model.visual_encoder.blocks)} ViT blocks"
        if fusion is not None:
            from benchmark.models.blip import patch_grid
            from benchmark.models.difnet import FusedVisualEncoder

            vit = model.visual_encoder
            model.visual_encoder = FusedVisualEncoder(vit, grid=patch_grid(vit)[0], **fusion)
            what += ", MultiLevelEncoder " + " ".join(f"{k}={v}" for k, v in fusion.items())
        path = checkpoint_path(filename, weights_dir)
        load_checkpoint(model, path, f"{name} ({what})")
        # PNP-VQA reads questions with LAVIS's ITM models without their "?"
        return wrap(model.eval(), name=name, info=_info(model, path), strip_question_mark=True)
    return load


def _info(model: nn.Module, path: Path) -> dict:
    return {"fingerprint": state_hash(model), "source": str(path.resolve())}


def register_blip_itm(name: str, vit_type: str, filename: str, vit_depth: Optional[int] = None,
                      text_layers: Optional[int] = None, fusion: Optional[dict] = None,
                      how: Optional[str] = None) -> None:
    """Register a LAVIS BLIP-ITM read from ``filename`` (in ``--weights-dir`` or LAVIS's cache);
    ``vit_depth``/``text_layers`` register a reduced-depth variant of the same architecture,
    ``fusion`` (``FusedVisualEncoder`` settings) puts a MultiLevelEncoder after the ViT."""
    how = how or (f"download {filename} from the LAVIS/BLIP model zoo on a machine with "
                  "internet and copy it there")
    register(name, missing=lambda **o: _missing(filename, how, **o), reads=LOCAL_FILES)(
        _blip_loader(name, vit_type, filename, vit_depth, text_layers, fusion))


for _name, (_type, _file) in CHECKPOINTS.items():
    register_blip_itm(_name, _type, _file)

#: BLIP-ITM base with DIFNet's MultiLevelEncoder (Lf=1, T=2, N=3; d_model 768, 12 heads, 133
#: panoptic classes) in front of its text encoder: the state dict of such a model, trained by you
DIFNET_BASE = "difnet_itm_base.pth"
DIFNET_FUSION = {"Lf": 1, "T": 2, "N": 3, "h": 12, "n_classes": 133}
register_blip_itm("difnet-itm-base", "base", DIFNET_BASE, fusion=DIFNET_FUSION,
                  how="make it with `python -m benchmark train --model difnet-itm-base "
                      "--dataset vqav2 --data-root DIR --out DIR` and pass that --out")
