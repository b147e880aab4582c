"""Wire formats: byte-compatibility with the original, round trips, and rejection of bad lines."""

from __future__ import annotations

import io

import numpy as np
import pytest

from iotbench import wire
from iotbench.data import cifar10


def savetxt_line(label: int, image: np.ndarray, fmt: str) -> bytes:
    """How the original sender built a line: the label digit + numpy.savetxt of one 1x3072 row."""
    out = io.StringIO()
    np.savetxt(out, image.ravel().reshape(1, 3072), fmt=fmt)
    return (str(label) + out.getvalue()).encode()


@pytest.mark.parametrize("variant", ["%f", "%f minus mean", "%d"])
def test_v1_encoder_is_byte_identical_to_savetxt(cifar_test, variant):
    images = cifar_test.images[:20]
    if variant == "%d":
        values, fmt = images, "%d"
    else:
        values, fmt = images.astype("float32") / 255, "%f"
        if "mean" in variant:
            values = values - cifar10.pixel_mean()
    for label, image in zip(cifar_test.labels[:20], values):
        assert wire.encode_v1(int(label), image, fmt) == savetxt_line(int(label), image, fmt)


@pytest.mark.parametrize("fmt", ["%f", "%d"])
def test_decode_returns_what_was_encoded(cifar_test, fmt):
    images = cifar_test.images[:50]
    values = images.astype("float32") / 255 - cifar10.pixel_mean() if fmt == "%f" else images
    lines = [wire.encode_v1(int(lb), im, fmt)[:-1] for lb, im in zip(cifar_test.labels[:50], values)]
    decoded = wire.decode_lines(lines)
    assert decoded.rejected == []
    assert decoded.raw is (fmt == "%d")
    np.testing.assert_array_equal(decoded.labels, cifar_test.labels[:50])
    # %f keeps six decimals: the decoded value is the float32 nearest to the text, as float() would give.
    expected = np.array([[float(x) for x in line[1:].split()] for line in lines], np.float32)
    np.testing.assert_array_equal(decoded.images.reshape(50, -1), expected)


def test_v2_and_scala_lines_decode_with_the_same_decoder(cifar_test):
    image, label = cifar_test.images[0], int(cifar_test.labels[0])
    v1 = wire.encode_v1(label, image, "%d")[:-1]
    lines = [wire.v2_header(7, 123_456_789) + v1, wire.encode_scala(label, image)[:-1], v1, wire.v2_trailer(3)[:-1]]
    decoded = wire.decode_lines(lines)
    assert len(decoded) == 3 and decoded.rejected == []
    assert decoded.seq.tolist() == [7, -1, -1]
    assert decoded.sent_ns.tolist() == [123_456_789, 0, 0]
    assert decoded.sent_total == 3
    for img in decoded.images:
        np.testing.assert_array_equal(img, image.astype(np.float32))


def test_original_scala_bigdl08_lines_decode_to_the_same_rgb_images(cifar_test):
    images, labels = cifar_test.images[:6], cifar_test.labels[:6]
    lines = [wire.encode_bigdl08(int(lab), img).rstrip(b"\n") for img, lab in zip(images, labels)]
    assert lines[0].startswith(b"%d.0,0,0,0,32,0,0,0,32," % (labels[0] + 1))
    assert b"-" in b"".join(lines)  # bright pixels are negative signed bytes
    lines[5] = wire.v2_header(5, 123) + lines[5]
    d = wire.decode_lines(lines)
    assert d.rejected == [] and d.raw
    assert np.array_equal(d.images.astype(np.uint8), images) and d.labels.tolist() == labels.tolist()
    assert d.seq.tolist() == [-1] * 5 + [5]


def test_bad_bigdl08_lines_are_rejected_with_their_reason(cifar_test):
    good = wire.encode_bigdl08(3, cifar_test.images[0]).rstrip(b"\n")
    bad_label = b"11.0" + good[3:]
    too_short = b"4.0,0,0,0,32,1,2"
    out_of_range = good[:-4] + b",200"
    d = wire.decode_lines([good, bad_label, too_short, out_of_range])
    assert len(d) == 1 and d.labels.tolist() == [3]
    assert sorted(r for r, _ in d.rejected) == sorted([wire.BAD_LABEL, wire.WRONG_LENGTH, wire.OUT_OF_RANGE])
    # %d lines and bigdl08 lines share a scale (0-255); a %f line is decoded on its own scale, in its own block
    with_int = wire.decode_blocks([good, wire.encode_v1(1, cifar_test.images[1], "%d").rstrip(b"\n")])
    assert [(len(b), b.raw) for b in with_int] == [(2, True)]
    with_float = wire.decode_blocks([good, wire.encode_v1(1, cifar_test.images[1] / 255.0, "%f").rstrip(b"\n")])
    assert [(len(b), b.raw) for b in with_float] == [(1, True), (1, False)] and with_float[0].rejected == []


def test_binary_frames_round_trip(cifar_test):
    data = b"".join(wire.encode_frame(int(cifar_test.labels[i]), cifar_test.images[i], i, 1000 + i) for i in range(5))
    decoded = wire.decode_frames(data + wire.end_frame(5))
    assert decoded.sent_total == 5 and decoded.raw
    assert decoded.seq.tolist() == list(range(5))
    np.testing.assert_array_equal(decoded.images.astype(np.uint8), cifar_test.images[:5])


def garbage_lines(good: bytes) -> dict[str, bytes]:
    """One line of each kind of damage, keyed by the reason the decoder must give."""
    values = good[1:].split(b" ")
    return {
        wire.EMPTY: b"3",
        wire.WRONG_LENGTH: b"3" + b" ".join(values[:-1]),  # 3,071 values
        wire.NOT_NUMERIC: b"3" + b" ".join(values[:-1] + [b"abc"]),
        wire.BAD_LABEL: b"x" + good[1:],
        wire.TOO_LONG: b"3" + b"1 " * 524_288,  # a 1 MB line
        wire.BAD_HEADER: b"~12:notatime:" + good,
    }


@pytest.mark.parametrize("fmt", ["%f", "%d"])
def test_each_bad_line_is_rejected_with_its_reason_and_good_lines_survive(cifar_test, fmt):
    values = cifar_test.images[:4] if fmt == "%d" else cifar_test.images[:4].astype("float32") / 255
    good = [wire.encode_v1(int(lb), im, fmt)[:-1] for lb, im in zip(cifar_test.labels[:4], values)]
    bad = garbage_lines(good[0])
    decoded = wire.decode_lines([good[0], *bad.values(), good[1], good[2], good[3]])
    assert len(decoded) == 4
    np.testing.assert_array_equal(decoded.labels, cifar_test.labels[:4])
    assert sorted(reason for reason, _ in decoded.rejected) == sorted(bad)


def test_pixels_outside_0_255_are_rejected_and_each_line_keeps_its_own_scale(cifar_test):
    ints = [wire.encode_v1(int(lb), im, "%d")[:-1] for lb, im in zip(cifar_test.labels[:3], cifar_test.images[:3])]
    too_big = ints[0][:-3] + b"999"
    negative = ints[0][:-3] + b"-5"
    d = wire.decode_lines([ints[1], too_big, negative, ints[2]])
    assert len(d) == 2 and d.raw and [r for r, _ in d.rejected] == [wire.OUT_OF_RANGE, wire.OUT_OF_RANGE]
    floats = wire.encode_v1(1, cifar_test.images[1] / 255.0, "%f")[:-1]
    mixed = wire.decode_lines([floats, ints[2]])  # each line on its own scale: a per-image flag for this block
    assert len(mixed) == 2 and mixed.rejected == [] and mixed.raw.tolist() == [False, True]
    np.testing.assert_array_equal(mixed.images[1], cifar_test.images[2].astype(np.float32))


def test_v2_line_with_bad_payload_keeps_its_sequence_number_for_accounting(cifar_test):
    line = wire.v2_header(5, 1) + b"3 1 2 3"
    decoded = wire.decode_lines([line])
    assert [r for r, _ in decoded.rejected] == [wire.WRONG_LENGTH]
    assert decoded.rejected_seq.tolist() == [5]


def test_one_garbage_line_in_a_d_stream_rejects_itself_only(cifar_test):
    """The issue's stream: 200 good %d lines and a garbage line with a dot (once read as a %f block)."""
    good = [wire.encode_v1(int(lb), im, "%d")[:-1] for lb, im in zip(cifar_test.labels[:200], cifar_test.images[:200])]
    decoded = wire.decode_lines(good[:100] + [b"3abc.def"] + good[100:])
    assert len(decoded) == 200 and decoded.raw is True
    assert [r for r, _ in decoded.rejected] == [wire.NOT_NUMERIC]
    np.testing.assert_array_equal(decoded.images.astype(np.uint8), cifar_test.images[:200])


def test_a_stray_f_line_among_d_lines_is_decoded_on_its_scale_in_its_own_block(cifar_test):
    ints = [wire.encode_v1(int(lb), im, "%d")[:-1] for lb, im in zip(cifar_test.labels[:63], cifar_test.images[:63])]
    stray = wire.encode_v1(7, cifar_test.images[63] / 255.0 - cifar10.pixel_mean(), "%f")[:-1]
    blocks = wire.decode_blocks(ints[:40] + [stray] + ints[40:])
    assert [(len(b), b.raw) for b in blocks] == [(40, True), (1, False), (23, True)]
    assert all(b.rejected == [] for b in blocks)
    assert blocks[1].labels.tolist() == [7] and (blocks[1].images < 0).any()  # the -s values, as sent
    np.testing.assert_array_equal(np.concatenate([blocks[0].images, blocks[2].images]).astype(np.uint8),
                                  cifar_test.images[:63])


def test_every_rejected_line_with_a_readable_header_keeps_its_seq(cifar_test):
    good = wire.encode_v1(3, cifar_test.images[0], "%d")[:-1]
    lines = [
        wire.v2_header(1, 5) + b"3" + b" 1" * 40_000,  # too long: the header is read from the first bytes
        wire.v2_header(2, 5) + b"x" + good[1:],  # bad label
        wire.v2_header(3, 5) + b"3",  # empty payload
        wire.v2_header(4, 5) + good[:-4],  # wrong number of values
        wire.v2_header(5, 5) + good[:-3] + b"256",  # out of range
        wire.v2_header(6, 5) + good[:-3] + b"2x5",  # non-numeric
        b"~x9:5:" + good,  # bad header: no seq
        b"~x9:5:" + b"3" + b" 1" * 40_000,  # too long, unreadable header: no seq
        good[:-4],  # v1: no seq
        wire.v2_header(9, 5) + good,
    ]
    d = wire.decode_lines(lines)
    assert len(d) == 1 and d.seq.tolist() == [9]
    assert [r for r, _ in d.rejected] == [wire.TOO_LONG, wire.BAD_LABEL, wire.EMPTY, wire.WRONG_LENGTH,
                                           wire.OUT_OF_RANGE, wire.NOT_NUMERIC, wire.BAD_HEADER, wire.TOO_LONG,
                                           wire.WRONG_LENGTH]
    assert d.rejected_seq.tolist() == [1, 2, 3, 4, 5, 6]
    assert len(d.rejected) - len(d.rejected_seq) == 3  # the rejected lines without a sequence number


# --------------------------------------------------------------------------- the original parser's contract


def original_parser(line: bytes) -> tuple[int, list[float]]:
    """infer_cifar.py's parser, on the line as its stdin gave it (text): raises where it failed."""
    text = line.decode("utf-8")
    return int(text[0]), [float(x) for x in text[1:].split()]


#: values the original's float() accepted, each with a space-free spelling of pixel value v (0-255) / 255
SPELLINGS = [
    lambda v: f"{v / 255:f}", lambda v: f"{v / 255:.3e}", lambda v: f"{v / 255:.2E}", lambda v: f"+{v / 255:f}",
    lambda v: f"{v / 255:.4f}".lstrip("0") or "0", lambda v: f"{v}.", lambda v: f"-{v / 255:f}",
    lambda v: "-" + f"{v / 255:.3f}".lstrip("0"), lambda v: f"{v / 255:.17f}", lambda v: f"{v // 10 + 1}_{v % 10}.5",
    lambda v: f"{v}e0", lambda v: f"0{v}.25", lambda v: repr(v / 255),
]
SEPARATORS = [" ", "  ", "\t", " \t ", "\x0b", "\x0c", "\r"]


def test_every_line_the_original_parser_accepted_is_accepted_with_the_same_pixels():
    """Seeded random lines mixing odd-but-valid spellings and separators, against the original parser."""
    rng = np.random.default_rng(11)
    lines = []
    for _ in range(40):
        pixels = rng.integers(0, 256, wire.PIXELS)
        spell = rng.integers(0, len(SPELLINGS), wire.PIXELS)
        seps = rng.integers(0, len(SEPARATORS), wire.PIXELS)
        body = "".join(SEPARATORS[s] + SPELLINGS[k](int(v)) for v, k, s in zip(pixels, spell, seps))
        lines.append((str(rng.integers(0, 10)) + body.lstrip(" ") + rng.choice(["", " ", "\r", "\t"])).encode())
    lines.append(b"5" + b" 1e-3" * wire.PIXELS)  # one spelling throughout: still the general parser
    lines.append(b"6 " + b"  .5\t" * wire.PIXELS)
    lines.append(("7" + " ".join(["1"] * (wire.PIXELS - 1) + ["\u0663"])).encode())  # a non-ASCII digit
    for block in (lines, lines[::-1]):  # alone or with others, the same verdict
        decoded = wire.decode_lines(block)
        assert decoded.rejected == []
        for label, image, line in zip(decoded.labels, decoded.images, block):
            want_label, want = original_parser(line)
            assert label == want_label
            np.testing.assert_array_equal(image.ravel(), np.asarray(want, np.float32))
    singles = [wire.decode_lines([line]) for line in lines]
    assert [d.raw for d in singles][-3:] == [False, False, True]  # a dot or an exponent makes a %f line


def test_values_that_are_no_pixels_are_the_one_exception():
    """nan and inf were accepted by float(); a pixel must be a finite float32."""
    for token in (b"nan", b"-inf", b"Infinity", b"1e39", b"1e400"):
        line = b"3" + b" 0.5" * (wire.PIXELS - 1) + b" " + token
        original_parser(line)  # the original took it
        assert [r for r, _ in wire.decode_lines([line]).rejected] == [wire.OUT_OF_RANGE]
