"""Pretrained LAVIS BLIP-ITM models, from local disk only (nothing is downloaded)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from benchmark.models import register, wrap

CHECKPOINTS = {
    "blip-itm-base": ("base", "model_base_retrieval_coco.pth"),
    "blip-itm-large": ("large", "model_large_retrieval_coco.pth"),
}


def torch_checkpoint_dir() -> Path:
    """Where LAVIS's ``download_cached_file`` looks first: ``$TORCH_HOME/hub/checkpoints``."""
    home = os.environ.get("TORCH_HOME") or Path.home() / ".cache" / "torch"
    return Path(home) / "hub" / "checkpoints"


def _missing_file(filename: str, how: Optional[str] = None) -> Optional[str]:
    path = torch_checkpoint_dir() / filename
    if path.exists():
        return None
    how = how or (f"download {filename} from the LAVIS/BLIP model zoo on a machine with internet "
                  "and copy it there")
    return f"weights not on disk: {path} ({how}, or set TORCH_HOME)"


def _load_lavis(name: str, model_type: str):
    from lavis.models import load_model

    model = load_model("blip_image_text_matching", model_type, is_eval=True, device="cpu")
    return wrap(model, name=name)


for _name, (_type, _file) in CHECKPOINTS.items():
    register(_name, missing=lambda _f=_file, **_: _missing_file(_f))(
        lambda _n=_name, _t=_type, **_: _load_lavis(_n, _t))

DIFNET_BASE = "difnet_itm_base.pth"  # state_dict of BLIP base + the fusion encoder below


def _load_difnet_base(**_):
    """BLIP-ITM base with a MultiLevelEncoder (DIFNet's Lf=1, T=2, N=3; d_model 768, 12 heads,
    133 panoptic classes) in front of its text encoder; weights from ``difnet_itm_base.pth``."""
    import torch
    from lavis.models import load_model

    from benchmark.models.difnet import FusedVisualEncoder

    model = load_model("blip_image_text_matching", "base", is_eval=True, device="cpu")
    model.visual_encoder = FusedVisualEncoder(model.visual_encoder, grid=24, Lf=1, T=2, N=3,
                                              h=12, n_classes=133)
    state = torch.load(torch_checkpoint_dir() / DIFNET_BASE, map_location="cpu")
    model.load_state_dict(state.get("model", state))
    return wrap(model.eval(), name="difnet-itm-base")


register("difnet-itm-base", missing=lambda **_: _missing_file(
    DIFNET_BASE, "save there the state_dict of a BLIP-ITM base whose visual encoder is the "
                 "FusedVisualEncoder of benchmark/models/pretrained.py, trained by you"))(_load_difnet_base)
