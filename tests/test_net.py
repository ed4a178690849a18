"""The network: shapes, BatchNorm folding, safetensors round trip, input convention."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from histo.errors import HistoInputError
from histo.segment.net import (
    FiberNet,
    NetConfig,
    fuse_batchnorm,
    load_model,
    predict_maps,
    save_model,
)
from histo.segment.netinput import input_stats, network_input


def _trained_like(channels=(8, 16, 32)):
    torch.manual_seed(0)
    net = FiberNet(channels)
    # give BatchNorm non-trivial statistics, as after training
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.rand(2, 3, 32, 32) * 2)
    return net.eval()


def test_output_shape_any_size_multiple():
    net = FiberNet((8, 16, 32)).eval()
    with torch.no_grad():
        assert net(torch.zeros(2, 3, 48, 80)).shape == (2, 3, 48, 80)


def test_fused_network_gives_same_output():
    net = _trained_like()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        a, b = net(x), fuse_batchnorm(net)(x)
    assert torch.allclose(a, b, atol=1e-4)


def test_save_load_round_trip(tmp_path):
    net = _trained_like()
    cfg = NetConfig(name="tiny", channels=(8, 16, 32), seed_threshold=0.42, extra={"note": "test"})
    path = save_model(tmp_path / "tiny", net, cfg)
    assert path.suffix == ".safetensors" and (tmp_path / "tiny.json").exists()
    assert json.loads((tmp_path / "tiny.json").read_text())["seed_threshold"] == 0.42
    net2, cfg2 = load_model(tmp_path / "tiny", device="cpu")
    assert cfg2 == cfg
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(net(x), net2(x))
    # safetensors holds tensors only: the file starts with its JSON header length
    raw = path.read_bytes()
    assert b"__reduce__" not in raw and raw[8:9] == b"{"


def test_load_missing_or_corrupt_model(tmp_path):
    with pytest.raises(HistoInputError, match="histo train"):
        load_model(tmp_path / "nothing")
    save_model(tmp_path / "m", _trained_like(), NetConfig(channels=(8, 16, 32)))
    (tmp_path / "m.safetensors").write_bytes(b"not a model")
    with pytest.raises(HistoInputError, match="cannot load"):
        load_model(tmp_path / "m")


def test_input_stats_and_normalisation():
    rgb = np.zeros((50, 40, 3), np.uint8)
    rgb[..., 0] = np.linspace(0, 200, 40)[None, :].astype(np.uint8)
    stats = input_stats(rgb, percentiles=(0, 100))
    assert stats.shape == (3, 2)
    assert stats[0].tolist() == [0.0, 200.0]
    x = network_input(rgb, stats)
    assert x.shape == (3, 50, 40) and x.dtype == np.float32
    assert x[0].min() == 0 and x[0].max() == 1
    # a flat channel must not divide by zero
    assert np.isfinite(x).all()


def test_fluorescence_replicated_to_three_channels():
    plane = np.arange(100, dtype=np.uint16).reshape(10, 10)
    x = network_input(plane, input_stats(plane, percentiles=(0, 100)))
    assert x.shape == (3, 10, 10)
    assert np.array_equal(x[0], x[2])


def test_predict_maps_pads_and_crops():
    net = fuse_batchnorm(_trained_like())
    x = np.random.default_rng(0).random((3, 37, 21)).astype(np.float32)
    y = predict_maps(net, x, pad_multiple=4)
    assert y.shape == (3, 37, 21) and (y >= 0).all() and (y <= 1).all()
    # deterministic on the CPU
    assert np.array_equal(y, predict_maps(net, x, pad_multiple=4))


@pytest.mark.parametrize("dtype, top", [(np.uint8, 256), (np.uint16, 4096)])
def test_channel_percentiles_equal_numpy(dtype, top):
    from histo.segment.netinput import channel_percentiles

    rng = np.random.default_rng(3)
    for n in (1, 2, 5, 1000):
        flat = rng.integers(0, top, (n, 3)).astype(dtype)
        for q in ((1.0, 99.5), (0, 100), (37.3, 50)):
            expected = np.percentile(flat.astype(np.float64), q, axis=0).T
            np.testing.assert_allclose(channel_percentiles(flat, q), expected, atol=1e-9)
    floats = rng.normal(size=(100, 2)).astype(np.float32)
    np.testing.assert_allclose(channel_percentiles(floats, (5, 95)), np.percentile(floats, (5, 95), axis=0).T, rtol=1e-6)
