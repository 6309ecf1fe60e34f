"""Input parsing: every accepted format, and clear refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from zkml.errors import InputError
from zkml.inputs import load_samples, to_samples
from zkml.quant import felt_to_int, felts_to_floats, int_to_felt, quantize

ROW = np.arange(64, dtype=np.float32) / 64


@pytest.mark.parametrize(
    ("content", "n"),
    [
        ({"input_data": [ROW.tolist()]}, 1),
        ({"input_data": [np.concatenate([ROW, ROW, ROW]).tolist()]}, 3),
        (ROW.tolist(), 1),
        ([ROW.tolist(), ROW.tolist()], 2),
        ({"x": [ROW.tolist()]}, 1),
    ],
)
def test_json_formats(tmp_path: Path, content: object, n: int) -> None:
    p = tmp_path / "in.json"
    p.write_text(json.dumps(content))
    out = load_samples(p, (64,))
    assert out.shape == (n, 64)
    np.testing.assert_allclose(out[0], ROW)


def test_npy_and_npz(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.stack([ROW, ROW]))
    np.savez(tmp_path / "b.npz", x=ROW.reshape(1, 1, 8, 8), y=np.array([3]))
    assert load_samples(tmp_path / "a.npy", (64,)).shape == (2, 64)
    assert load_samples(tmp_path / "b.npz", (1, 8, 8)).shape == (1, 1, 8, 8)


@pytest.mark.parametrize(
    ("raw", "shape", "message"),
    [
        (np.zeros(63), (64,), "not a multiple of one sample's 64"),
        (np.zeros((2, 3, 5)), (64,), "expected [64]"),
        (np.array([np.nan] * 64), (64,), "NaN or infinite"),
        (np.array([np.inf] + [0.0] * 63), (64,), "NaN or infinite"),
        (np.zeros(0), (64,), "empty input"),
        (np.zeros((1, 7, 7)), (1, 8, 8), "[1, 8, 8]"),
        (np.zeros((8, 8)), (64,), "shape [8, 8] does not fit"),  # ambiguous: refused, not guessed
    ],
)
def test_bad_shapes_say_what_was_expected(raw: np.ndarray, shape: tuple[int, ...], message: str) -> None:
    with pytest.raises(InputError, match=message.replace("[", r"\[").replace("]", r"\]")):
        to_samples(raw, shape)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.json", None, "not found"),
        ("bad.json", "{not json", "cannot read"),
        ("obj.json", '{"foo": 1}', "input_data"),
        ("two.json", '{"input_data": [[1], [2]]}', "2 inputs"),
        ("in.txt", "1,2,3", "unknown input format"),
        ("str.json", '["a", "b"]', "cannot read input"),
    ],
)
def test_bad_files(tmp_path: Path, name: str, content: str | None, message: str) -> None:
    p = tmp_path / name
    if content is not None:
        p.write_text(content)
    with pytest.raises(InputError, match=message):
        load_samples(p, (64,))


@pytest.mark.parametrize("v", [0.0, 1 / 128, -1 / 128, 0.5 / 128, -0.5 / 128, 1.5 / 128, -2.5 / 128, -0.3, 0.7, 123.456, -99.99])
def test_quantize_matches_ezkl(v: float) -> None:
    import ezkl

    ours = int_to_felt(quantize(np.array([v]), 7)[0])
    theirs = ezkl.float_to_felt(v, 7)
    assert ours == theirs.removeprefix("0x")
    assert felt_to_int(ours) == quantize(np.array([v]), 7)[0]


def test_felts_roundtrip() -> None:
    ints = [0, 1, -1, 2**40, -(2**40)]
    np.testing.assert_array_equal(felts_to_floats([int_to_felt(i) for i in ints], 3), np.array(ints) / 8)
