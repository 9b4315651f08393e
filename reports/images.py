"""Gallery images for the report: heatmap overlays with the ground-truth outline, inlined as
thumbnails."""
from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image
from scipy import ndimage

from benchmark.core.maps import to_image_size

SCALE = 2  # display size multiplier for small images (the browser enlarges them, pixelated)
THUMB = 192  # the longest side, in pixels, of a gallery image as stored and as shown


def outline(mask: np.ndarray) -> np.ndarray:
    """Boundary pixels of a bool mask (mask minus its erosion)."""
    return mask & ~ndimage.binary_erosion(mask)


def overlay(image: np.ndarray, heatmap: np.ndarray | None, mask: np.ndarray | None,
            alpha: float = 0.5) -> np.ndarray:
    """RGB uint8: the image, the min-max normalised heatmap in 'inferno' on top, mask outline cyan."""
    from matplotlib import colormaps

    rgb = image.astype(np.float32) / 255.0
    if heatmap is not None:
        heat = to_image_size(heatmap, image.shape[:2])
        heat = np.nan_to_num(heat, nan=0.0, posinf=0.0, neginf=0.0)
        span = heat.max() - heat.min()
        heat = (heat - heat.min()) / span if span > 0 else np.zeros_like(heat)
        rgb = (1 - alpha) * rgb + alpha * colormaps["inferno"](heat)[..., :3]
    out = (np.clip(rgb, 0, 1) * 255).astype(np.uint8)
    if mask is not None and mask.any():
        out[outline(mask)] = (0, 255, 255)
    return out


def thumbnail_uri(rgb: np.ndarray, max_side: int = THUMB) -> str:
    """``data:image/jpeg;base64,...`` of an RGB uint8 array, shrunk (Lanczos) to at most
    ``max_side`` pixels on its longest side, never enlarged; JPEG at quality 90 (a textured
    scene is 3× smaller than as PNG; deterministic)."""
    img = Image.fromarray(rgb)
    if max(img.size) > max_side:
        ratio = max_side / max(img.size)
        img = img.resize((max(1, round(img.width * ratio)), max(1, round(img.height * ratio))),
                         Image.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90, optimize=True)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def display_side(image_side: int) -> int:
    """How wide a gallery image is shown: small images enlarged ``SCALE``×, at most ``THUMB``."""
    return min(SCALE * image_side, THUMB)
