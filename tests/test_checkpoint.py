"""Checkpoints: atomic writes, bit-identical resumption, refusal of foreign,
corrupt or mismatched files, and survival of a SIGKILL mid-run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import eulerflow as ef
import numpy as np
import pytest

X, Y = ef.data.spiral_classes(60, 3, 0.2, seed=0)


def train(epochs=12, **kw):
    net = ef.mlp([2, 12, 3], "atan", seed=kw.pop("init", 0))
    opt = kw.pop("opt", None) or ef.optim.Nadam(1e-2)
    hist = net.fit(X, Y, loss="cross_entropy", optimizer=opt, epochs=epochs, batch_size=16,
                   seed=7, **kw)
    return net, opt, hist


def epochs_done(path) -> int:
    with np.load(path) as npz:
        return int(npz["epochs_done"])


def same_bits(a, b):
    return all(np.array_equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


def test_checkpointed_run_equals_one_call(tmp_path):
    plain, opt1, h1 = train()
    for every in (1, 5, 12, 100):
        net, opt2, h2 = train(checkpoint=tmp_path / f"c{every}.npz", checkpoint_every=every)
        assert same_bits(plain, net)
        assert np.array_equal(h1.loss, h2.loss)
        assert np.array_equal(h1.metrics["accuracy"], h2.metrics["accuracy"])
        assert opt2.step_count == opt1.step_count


@pytest.mark.parametrize("stop_after", [0, 4, 10])
def test_resume_after_a_stop_is_bit_identical(tmp_path, stop_after):
    plain, _, h1 = train()
    path = tmp_path / "ck.npz"
    train(checkpoint=path, callbacks=[lambda e, loss: e == stop_after])
    net, _, h2 = train(init=99, resume=path, checkpoint=path)  # other init: all comes from the file
    assert same_bits(plain, net)
    assert np.array_equal(h1.loss, h2.loss)


def test_resume_refuses_another_run_or_a_corrupt_file(tmp_path):
    path = tmp_path / "ck.npz"
    train(epochs=3, checkpoint=path)
    with pytest.raises(ValueError, match="optimizer"):
        train(resume=path, opt=ef.optim.Adam(1e-2))
    net = ef.mlp([2, 12, 3], "atan", seed=0)
    with pytest.raises(ValueError, match="batch_size"):
        net.fit(X, Y, loss="cross_entropy", optimizer=ef.optim.Nadam(1e-2), epochs=12,
                batch_size=8, seed=7, resume=path)
    with pytest.raises(ValueError, match="parameter"):
        ef.mlp([2, 5, 3], "atan", seed=0).fit(X, Y, loss="cross_entropy",
                                              optimizer=ef.optim.Nadam(1e-2), epochs=12,
                                              batch_size=16, seed=7, resume=path)
    data = path.read_bytes()
    bad = tmp_path / "truncated.npz"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a valid eulerflow checkpoint"):
        train(resume=bad)
    net = ef.Dense(2, 2)
    net.save(tmp_path / "net.npz")
    with pytest.raises(ValueError, match="checkpoint"):
        train(resume=tmp_path / "net.npz")


def test_a_failed_write_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "ck.npz"
    train(epochs=3, checkpoint=path)
    before = path.read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken)
    with pytest.raises(OSError, match="disk full"):
        train(epochs=3, checkpoint=path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ck.npz"]  # no temporary file left


def test_resume_after_sigkill_is_bit_identical(tmp_path):
    path = tmp_path / "ck.npz"
    script = textwrap.dedent(f"""
        import eulerflow as ef
        X, Y = ef.data.spiral_classes(60, 3, 0.2, seed=0)
        net = ef.mlp([2, 12, 3], "atan", seed=0)
        net.fit(X, Y, loss="cross_entropy", optimizer=ef.optim.Nadam(1e-2), epochs=100000,
                batch_size=16, seed=7, checkpoint={str(path)!r}, checkpoint_every=1)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if path.exists() and epochs_done(path) >= 3:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    done = epochs_done(path)  # the file is whole: writes are atomic
    assert done >= 3
    total = done + 3
    plain, _, h1 = train(epochs=total)
    net = ef.mlp([2, 12, 3], "atan", seed=0)
    h2 = net.fit(X, Y, loss="cross_entropy", optimizer=ef.optim.Nadam(1e-2), epochs=total,
                 batch_size=16, seed=7, resume=path)
    assert same_bits(plain, net)
    assert np.array_equal(h1.loss, h2.loss)
    # a temporary file the kill interrupted may remain beside it; it is never read
    assert all(p == "ck.npz" or p.endswith(".tmp") for p in os.listdir(tmp_path))
