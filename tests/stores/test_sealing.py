"""`Sealer`: AES-GCM under a rotating key list, bound to the store key."""

from __future__ import annotations

import base64
import logging
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qlik_sso_middleware.errors import ConfigurationError
from qlik_sso_middleware.stores._sealing import Sealer

K1 = os.urandom(32)
K2 = os.urandom(32)
LOGGER = "qlik_sso_middleware.stores._sealing"


def test_round_trip_and_ciphertext_hides_the_data() -> None:
    sealer = Sealer([K1])
    blob = sealer.seal("key-a", b"cookie-secret-value")
    assert b"cookie-secret-value" not in blob
    assert sealer.open("key-a", blob) == b"cookie-secret-value"
    assert sealer.seal("key-a", b"same") != sealer.seal("key-a", b"same")  # fresh nonce


def test_generated_key_is_accepted_and_random() -> None:
    key = Sealer.generate_key()
    assert len(base64.urlsafe_b64decode(key)) == 32
    assert key != Sealer.generate_key()
    sealer = Sealer([key])
    assert sealer.open(b"k", sealer.seal(b"k", b"x")) == b"x"


@pytest.mark.parametrize(
    "encode",
    [
        base64.b64encode,
        base64.urlsafe_b64encode,
        lambda raw: base64.urlsafe_b64encode(raw).rstrip(b"="),
    ],
)
def test_keys_may_be_given_as_base64_text(encode: object) -> None:
    raw = bytes(range(250, 256)) * 5 + b"\xfb\xff"  # exercises + / - _ alphabets
    text = encode(raw).decode()  # type: ignore[operator]
    assert Sealer([text]).open("k", Sealer([raw]).seal("k", b"x")) == b"x"


@pytest.mark.parametrize(
    ("keys", "field"),
    [
        ([], "sealing_keys"),
        (b"x" * 32, "sealing_keys"),
        ([b"short"], "sealing_keys[0]"),
        ([K1, "not base64 at all!"], "sealing_keys[1]"),
        ([K1, base64.b64encode(b"x" * 16).decode()], "sealing_keys[1]"),
        ([K1, 42], "sealing_keys[1]"),
        ([K1, K2, K1], "sealing_keys[2]"),
    ],
)
def test_bad_key_lists_are_configuration_errors(keys: object, field: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        Sealer(keys)  # type: ignore[arg-type]
    assert info.value.field == field


def test_errors_and_repr_never_show_key_material() -> None:
    secret = base64.b64encode(b"y" * 31).decode()  # valid base64, wrong length
    with pytest.raises(ConfigurationError) as info:
        Sealer([secret])
    assert secret not in str(info.value)
    assert K1.hex() not in repr(Sealer([K1]))
    assert base64.b64encode(K1).decode() not in repr(Sealer([K1]))


def test_newest_key_seals_and_every_key_opens() -> None:
    old = Sealer([K1])
    rotated = Sealer([K2, K1])
    from_old = old.seal("k", b"old")
    assert rotated.open("k", from_old) == b"old"
    from_rotated = rotated.seal("k", b"new")
    assert old.open("k", from_rotated) is None  # sealed by K2, which `old` does not know
    assert Sealer([K2]).open("k", from_rotated) == b"new"
    assert Sealer([K2]).open("k", from_old) is None  # K1 removed


def test_bad_blobs_are_misses_logged_once_per_cause(caplog: pytest.LogCaptureFixture) -> None:
    sealer = Sealer([K1])
    blob = sealer.seal("key-a", b"data")
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    unknown = Sealer([K2]).seal("key-a", b"data")
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        for _ in range(3):
            assert sealer.open("key-a", tampered) is None
            assert sealer.open("key-b", blob) is None  # moved to another key
            assert sealer.open("key-a", unknown) is None
            assert sealer.open("key-a", b"") is None
            assert sealer.open("key-a", b"\x02" + blob[1:]) is None
    messages = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert len(messages) == 3, messages
    assert sum("does not authenticate" in m for m in messages) == 1
    assert sum("not in the key list" in m for m in messages) == 1
    assert sum("malformed" in m for m in messages) == 1
    assert all(r.levelno == logging.WARNING for r in caplog.records if r.name == LOGGER)
    assert not any(b"data".hex() in m or "key-a" in m for m in messages)


@settings(max_examples=100, deadline=None)
@given(
    data=st.binary(max_size=512),
    binding=st.text(max_size=64),
    flip=st.integers(min_value=0),
)
def test_every_single_bit_flip_is_a_miss(data: bytes, binding: str, flip: int) -> None:
    sealer = Sealer([K1, K2])
    blob = sealer.seal(binding, data)
    assert sealer.open(binding, blob) == data
    bit = flip % (len(blob) * 8)
    damaged = bytearray(blob)
    damaged[bit // 8] ^= 1 << (bit % 8)
    assert sealer.open(binding, bytes(damaged)) is None
    assert sealer.open(binding + "x", blob) is None
