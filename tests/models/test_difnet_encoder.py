"""The MultiLevelEncoder's semantics (DIFNet, CVPR 2022), behaviour by behaviour."""
import pytest
import torch

from benchmark.models.difnet import MultiLevelEncoder


def _enc(**kw):
    torch.manual_seed(0)
    args = dict(Lf=1, T=2, N=3, padding_idx=0, d_model=32, d_k=8, d_v=8, h=4, d_ff=64,
                dropout=0.0, d_in=16, d_seg=5)
    args.update(kw)
    return MultiLevelEncoder(**args).eval()


def _inputs(b=2, s=6):
    g = torch.Generator().manual_seed(1)
    return torch.randn(b, s, 16, generator=g), torch.rand(b, s, 5, generator=g)


def test_lf_must_be_below_n_and_streams_must_match():
    with pytest.raises(ValueError, match="Lf < N"):
        _enc(Lf=3, N=3)
    x, p = _inputs()
    with pytest.raises(ValueError, match="streams differ"):
        _enc()(x, p[:, :4])


def test_before_fusion_streams_are_independent():
    enc = _enc()
    x, p = _inputs()
    a_x, a_y, _ = enc.streams(x, p)
    b_x, b_y, _ = enc.streams(x, p + 1.0)
    assert torch.equal(a_x, b_x)  # changing the segmentation stream leaves the visual one alone
    assert not torch.allclose(a_y, b_y)
    c_x, c_y, _ = enc.streams(x + 1.0, p)
    assert torch.equal(a_y, c_y) and not torch.allclose(a_x, c_x)


def test_shared_weights_separate_layernorm_per_stream():
    enc = _enc()
    pre = enc.layers[0]
    assert len(pre.norm_attn) == 2 and len(pre.norm_ff) == 2
    assert all(len(l.norm_attn) == 1 for l in enc.layers[1:])
    with torch.no_grad():
        pre.norm_attn[1].weight.mul_(3.0)  # touching the pixel stream's norm ...
    x, p = _inputs()
    a_x, _, _ = enc.streams(x, p)
    b_x, _, _ = _enc().streams(x, p)
    assert torch.equal(a_x, b_x)  # ... does not touch the visual stream


def test_t_really_repeats_the_prefusion_layers():
    enc1, enc2 = _enc(T=1), _enc(T=2)
    enc2.load_state_dict(enc1.state_dict())  # T adds no parameters
    x, p = _inputs()
    x1, y1, _ = enc1.streams(x, p)
    x2, y2, _ = enc2.streams(x, p)
    layer = enc1.layers[0]
    assert torch.allclose(x2, layer(x1, None, stream=0), atol=1e-6)
    assert torch.allclose(y2, layer(y1, None, stream=1), atol=1e-6)


def test_output_is_final_stream_plus_both_prefusion_streams():
    enc = _enc()
    x, p = _inputs()
    out, pad = enc(x, p)
    sx, sy, _ = enc.streams(x, p)
    z = sx + sy
    for layer in enc.layers[1:]:
        z = layer(z, None)
    assert torch.allclose(out, z + sx + sy, atol=1e-6)
    assert not pad.any()


def test_gradients_reach_both_streams():
    enc = _enc()
    x, p = _inputs()
    x.requires_grad_(True)
    p.requires_grad_(True)
    enc(x, p)[0].sum().backward()
    assert x.grad.abs().sum() > 0 and p.grad.abs().sum() > 0


def test_padding_rows_do_not_influence_other_positions():
    enc = _enc()
    x, p = _inputs()
    x[:, 3] = 0.0  # all padding_idx -> padding
    out_a, pad = enc(x, p)
    p2 = p.clone()
    p2[:, 3] = 7.0
    x2 = x.clone()
    out_b, _ = enc(x2, p2)
    assert pad[:, 3].all() and pad.sum() == 2
    keep = [0, 1, 2, 4, 5]
    assert torch.allclose(out_a[:, keep], out_b[:, keep], atol=1e-6)
