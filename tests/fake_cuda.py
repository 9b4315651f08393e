"""A CUDA device emulated on the CPU, strict where CUDA is strict.

Tensors "on the fake GPU" are CPU tensors of the subclass :class:`FakeCudaTensor`: their
``.device`` says ``cuda:0``, every result computed from them stays on it, and everything a real
GPU refuses fails the same way — an operation that mixes a fake-GPU tensor with a CPU tensor of
one or more dimensions (CUDA accepts CPU scalars, CPU index tensors inside ``[]`` and cross-
device ``copy_``), and ``.numpy()`` on a GPU tensor. Factory functions given ``device="cuda"``
make fake-GPU tensors, ``.cpu()`` / ``.to("cpu")`` leave the device. With :func:`fake_cuda`
active, ``torch.cuda.is_available()`` is true and ``Module.to("cuda")`` moves parameters and
buffers onto the fake device, so the suite's own ``--device cuda`` path runs unchanged on a
machine without a GPU, and a tensor left behind on the CPU is an error, as on a GPU.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten, tree_map

DEVICE = torch.device("cuda", 0)
#: the operations CUDA lets a CPU tensor take part in
_MIXING_ALLOWED = {torch.Tensor.copy_, torch.Tensor.__getitem__, torch.Tensor.__setitem__}


def _on_gpu(device: Any) -> bool:
    return device is not None and torch.device(device).type == "cuda"


def _plain(x: Any) -> Any:
    if not isinstance(x, FakeCudaTensor):
        return x
    with torch._C.DisableTorchFunctionSubclass():
        return x.as_subclass(torch.Tensor)


def _fake(x: Any) -> Any:
    if not isinstance(x, torch.Tensor) or isinstance(x, FakeCudaTensor):
        return x
    with torch._C.DisableTorchFunctionSubclass():
        return x.as_subclass(FakeCudaTensor)


def _deepcopy(t: torch.Tensor, memo: dict) -> torch.Tensor:
    copy = _fake(_plain(t).detach().clone())
    copy = (nn.Parameter(copy, t.requires_grad) if isinstance(t, nn.Parameter)
            or getattr(t, "_is_param", False) else copy.requires_grad_(t.requires_grad))
    memo[id(t)] = copy
    return copy


class FakeCudaTensor(torch.Tensor):
    """A CPU tensor that lives on the fake GPU (see the module docstring)."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func == torch.Tensor.device.__get__:
            return DEVICE
        if func == torch.Tensor.is_cuda.__get__:
            return True
        if func is torch.Tensor.numpy:
            raise TypeError("can't convert cuda:0 device type tensor to numpy. Use Tensor.cpu() "
                            "to copy the tensor to host memory first.")
        if func is torch.Tensor.cpu:
            return _plain(args[0]).clone()
        if func is torch.Tensor.to:
            return _to(args[0], *args[1:], **kwargs)
        if func is torch.Tensor.cuda:
            return args[0]
        if func is torch.Tensor.__deepcopy__:
            return _deepcopy(*args)
        tensors = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        on_cpu = [t for t in tensors if not isinstance(t, cls) and t.dim() > 0]
        if on_cpu and func not in _MIXING_ALLOWED:
            raise RuntimeError(f"Expected all tensors to be on the same device, but found at "
                               f"least two devices, cuda:0 and cpu! ({func.__name__})")
        with torch._C.DisableTorchFunctionSubclass():
            out = func(*args, **kwargs)
        if func in (torch.Tensor.__setitem__,) or not isinstance(out, (torch.Tensor, tuple, list)):
            return out
        return tree_map(_fake, out)


def _to(t: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    """``Tensor.to`` onto, off or within the fake GPU."""
    target = kwargs.pop("device", None)
    rest = []
    for a in args:
        if isinstance(a, torch.Tensor):
            target = a.device
            kwargs.setdefault("dtype", a.dtype)
        elif isinstance(a, (str, torch.device)):
            target = a
        else:
            rest.append(a)
    with torch._C.DisableTorchFunctionSubclass():
        out = _plain(t).to(*rest, **kwargs)
        if target is not None and not _on_gpu(target):
            return out.clone() if out is _plain(t) else out
    if target is None and not isinstance(t, FakeCudaTensor):
        return out
    return _fake(out)


class _FactoriesOnFakeGpu(TorchFunctionMode):
    """``torch.zeros(..., device="cuda")`` and friends make fake-GPU tensors; CPU tensors
    moved with ``.to("cuda")`` / ``.cuda()`` join them."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if func is torch.Tensor.to and not isinstance(args[0], FakeCudaTensor):
            return _to(*args, **kwargs)
        if func is torch.Tensor.cuda and not isinstance(args[0], FakeCudaTensor):
            return _fake(args[0].clone())
        if _on_gpu(kwargs.get("device")):
            kwargs["device"] = "cpu"
            return _fake(func(*args, **kwargs))
        return func(*args, **kwargs)


def _module_to(original):
    def to(self: nn.Module, *args: Any, **kwargs: Any) -> nn.Module:
        device = kwargs.get("device", args[0] if args else None)
        if isinstance(device, (str, torch.device)) and _on_gpu(device):
            for module in self.modules():
                for name, p in module._parameters.items():
                    if p is not None and not isinstance(p, FakeCudaTensor):
                        module._parameters[name] = nn.Parameter(
                            p.detach().as_subclass(FakeCudaTensor), p.requires_grad)
                for name, b in module._buffers.items():
                    if b is not None:
                        module._buffers[name] = _fake(b)
            return self
        return original(self, *args, **kwargs)
    return to


@contextlib.contextmanager
def fake_cuda(monkeypatch) -> Iterator[None]:
    """Within the block, torch sees one (fake) GPU; see the module docstring."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(nn.Module, "to", _module_to(nn.Module.to))
    with _FactoriesOnFakeGpu():
        yield
