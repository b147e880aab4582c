"""Writes ``corpus.tsv.gz``, the golden wire lines: ``python tests/wire_corpus/generate.py``.

Independent of the decoders on purpose: each case is built here from pixel values and spelled
out by hand, and its expected outcome is stated here (for images: the pixels as the original
receiver's ``float()`` reads each token), never computed by the code under test.
See README.md for the format.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus.tsv.gz"
PIXELS = 3072

# the reason strings, spelled out: they are the contract between the Python and Scala parsers
TOO_LONG, BAD_HEADER, BAD_LABEL, EMPTY = "line too long", "bad v2 header", "bad label", "empty payload"
WRONG_LENGTH, NOT_NUMERIC, OUT_OF_RANGE = "wrong number of values", "non-numeric characters", "value out of range"


def image(seed: int) -> np.ndarray:
    """A 0-255 HWC image (flattened) with every value and a pattern that compresses well."""
    y, x, c = np.meshgrid(np.arange(32), np.arange(32), np.arange(3), indexing="ij")
    return ((x * 8 + y * 3 + c * 85 + seed * 37) % 256).ravel()


def checksum(pixels) -> str:
    """First 16 hex digits of the SHA-256 of the pixels as float32 little-endian, HWC, -0.0 read as 0.0."""
    values = np.asarray(pixels, np.float32) + np.float32(0)
    return hashlib.sha256(values.astype("<f4").tobytes()).hexdigest()[:16]


def spelled(tokens: list[str]) -> list[float]:
    """What the original receiver's ``float(x)`` made of each token, as float32 (the model's input)."""
    return np.asarray([float(t) for t in tokens], np.float64).astype(np.float32)


def ok(label: int, scale: str, pixels, seq: int = -1) -> str:
    return f"ok:{label}:{scale}:{seq}:{checksum(pixels)}"


def reject(reason: str, seq: int = -1) -> str:
    return f"reject:{seq}:{reason}"


def cases() -> list[tuple[str, str, bytes]]:
    """``(name, expected, line)``; names start with the format they exercise."""
    out: list[tuple[str, str, bytes]] = []

    def add(name: str, expected: str, line: str | bytes) -> None:
        out.append((name, expected, line.encode("ascii") if isinstance(line, str) else line))

    def f_tokens(seed: int, fmt: Callable[[float], str] = lambda v: f"{v:f}", mean: float = 0.0) -> list[str]:
        return [fmt(v / 255 - mean) for v in image(seed)]

    d = [str(v) for v in image(1)]
    f = f_tokens(2)
    fs = f_tokens(3, mean=0.47)  # -s: minus the training mean, so negative values
    hdr = "~7:1700000000123456789:"

    # --- accepted formats
    add("v1-f", ok(3, "f", spelled(f)), "3" + " ".join(f))
    add("v1-f-minus-mean", ok(4, "f", spelled(fs)), "4" + " ".join(fs))
    add("v1-d", ok(5, "d", image(1)), "5" + " ".join(d))
    add("v1-d-label-0", ok(0, "d", image(1)), "0" + " ".join(d))
    add("v1-d-space-after-label", ok(9, "d", image(1)), "9 " + " ".join(d))
    add("v2-f", ok(3, "f", spelled(f), 7), hdr + "3" + " ".join(f))
    add("v2-d", ok(6, "d", image(1), 7), hdr + "6" + " ".join(d))
    add("comma-d", ok(2, "d", image(1)), "2," + ",".join(d))
    add("v2-comma-d", ok(2, "d", image(1), 7), hdr + "2," + ",".join(d))
    rgb = image(4).reshape(-1, 3)
    bgr_signed = rgb[:, ::-1].astype(np.uint8).astype(np.int8).ravel()
    b08_tokens = [str(v) for v in bgr_signed]
    b08 = ",".join(b08_tokens)
    b08_hdr = "4.0,0,0,0,32,0,0,0,32,"
    add("bigdl08", ok(7, "d", rgb.ravel()), "8.0,0,0,0,32,0,0,0,32," + b08)
    add("v2-bigdl08", ok(0, "d", rgb.ravel(), 7), hdr + "1.0,0,0,0,32,0,0,0,32," + b08)
    add("trailer", "end:50", "~end:50")
    # --- odd but accepted by the original's float() and split()
    odd = {
        "exponent": lambda v: f"{v:.3e}", "capital-exponent": lambda v: f"{v:.2E}", "plus": lambda v: f"+{v:f}",
        "no-leading-zero": lambda v: f"{v:.4f}".lstrip("0") or "0", "long-mantissa": lambda v: f"{v:.16f}",
        "underscore": lambda v: f"{v * 1e6:_.1f}", "repr": repr,
    }
    for name, fmt in odd.items():
        tokens = f_tokens(5, fmt)
        add(f"v1-f-{name}", ok(1, "f", spelled(tokens)), "1" + " ".join(tokens))
    trailing_dot = [f"{v}." for v in image(6)]
    add("v1-f-trailing-dot", ok(2, "f", spelled(trailing_dot)), "2" + " ".join(trailing_dot))
    # the scale rule: a decimal point or an exponent anywhere in the values makes a %f line (values as sent)
    exp_only = [f"{v}e-2" for v in image(6)]
    add("v1-f-exponent-without-dot", ok(2, "f", spelled(exp_only)), "2" + " ".join(exp_only))
    add("v1-f-one-dot-among-integers", ok(2, "f", spelled(d[:-1] + ["5."])), "2" + " ".join(d[:-1] + ["5."]))
    integral = ",".join(t + ".0" for t in b08_tokens)
    add("bigdl08-integral-floats", ok(3, "d", rgb.ravel()), "4.00,0,0,0,32,0,0,0,32," + integral)
    add("v1-f-neg-no-leading-zero", ok(2, "f", spelled(["-.5"] * PIXELS)), "2" + " -.5" * PIXELS)
    seps = ["\t", "  ", " \t ", "\x0b", "\x0c", "\r", "\x1f"]
    body = "".join(seps[i % len(seps)] + t for i, t in enumerate(f))
    add("v1-f-whitespace", ok(3, "f", spelled(f)), "3" + body + "\r")
    add("v1-f-some-integers", ok(3, "f", spelled(f[:-2] + ["1", "0"])), "3" + " ".join(f[:-2] + ["1", "0"]))
    add("v1-f-out-of-0-1", ok(3, "f", spelled(["300.5", "-2.25"] * 1536)), "3" + " 300.5 -2.25" * 1536)
    padded = [f"{v:03d}" for v in image(1)]
    add("v1-d-leading-zeros", ok(5, "d", image(1)), "5" + " ".join(padded))
    add("v1-d-plus-and-minus-zero", ok(5, "d", [0, 5] + list(image(1)[2:])), "5" + " ".join(["-0", "+5"] + d[2:]))
    add("v1-d-trailing-separators", ok(5, "d", image(1)), "5" + " ".join(d) + " ,")
    # --- every rejection reason
    long_body = "3" + " 1" * 40_000
    add("too-long-v1", reject(TOO_LONG), long_body)
    add("too-long-v2", reject(TOO_LONG, 9), "~9:123:" + long_body)
    add("too-long-bad-header", reject(TOO_LONG), "~x9:123:" + long_body)
    for name, line in {
        "bad-seq": "~x9:123:", "bad-time": "~12:notatime:", "no-colons": "~5", "one-colon": "~5:123",
        "seq-19-digits": "~1234567890123456789:1:", "time-over-int64": "~1:9223372036854775808:",
        "trailer-no-count": "~end:", "trailer-not-a-number": "~end:5x",
    }.items():
        add(f"bad-header-{name}", reject(BAD_HEADER), line + ("" if "trailer" in name else "3" + " ".join(d)))
    add("bad-label-letter", reject(BAD_LABEL), "x" + " ".join(d))
    add("bad-label-minus", reject(BAD_LABEL), "-3 " + " ".join(d))
    add("bad-label-v2", reject(BAD_LABEL, 11), "~11:5:x" + " ".join(d))
    add("bigdl08-bad-label", reject(BAD_LABEL), "11.0,0,0,0,32,0,0,0,32," + b08)
    add("bigdl08-fractional-label", reject(BAD_LABEL), "4.5,0,0,0,32,0,0,0,32," + b08)
    add("empty-label-only", reject(EMPTY), "3")
    add("empty-separators-only", reject(EMPTY), "3 \t ,")
    add("empty-comma", reject(EMPTY), "3,")
    add("empty-v2-body", reject(EMPTY, 4), "~4:1:")
    add("empty-v2-label-only", reject(EMPTY, 4), "~4:1:3")
    add("bigdl08-empty", reject(EMPTY), "8.0,0,0,0,32,0,0,0,32,")
    add("wrong-length-3071", reject(WRONG_LENGTH), "3" + " ".join(d[:-1]))
    add("wrong-length-3073", reject(WRONG_LENGTH), "3" + " ".join(d + ["1"]))
    add("wrong-length-v2", reject(WRONG_LENGTH, 5), "~5:1:3 1 2 3")
    add("wrong-length-f", reject(WRONG_LENGTH), "3" + " ".join(f[:-1]))
    add("bigdl08-short-header", reject(WRONG_LENGTH), "4.0,0,0,32,0,0,0,32," + b08)
    add("bigdl08-wrong-length", reject(WRONG_LENGTH), b08_hdr + b08 + ",1")
    for name, token in {
        "letters": "abc", "two-dots": "1.2.3", "double-minus": "--5", "trailing-minus": "5-", "lone-minus": "-",
        "lone-dot": ".", "bare-exponent": "1e", "exponent-only": "e5", "double-underscore": "1__0",
        "leading-underscore": "_1", "hex": "0x10", "semicolon": "1;2", "plus-minus": "+-1", "infinite-word": "infinit",
    }.items():
        add(f"non-numeric-{name}", reject(NOT_NUMERIC), "3" + " ".join(d[:-1] + [token]))
    add("non-numeric-issue-garbage", reject(NOT_NUMERIC), "3abc.def")
    add("non-numeric-beats-wrong-length", reject(NOT_NUMERIC), "3" + " ".join(d + ["x"]))
    add("non-numeric-v2", reject(NOT_NUMERIC, 8), "~8:1:3" + " ".join(d[:-1] + ["x"]))
    add("non-numeric-bigdl08", reject(NOT_NUMERIC), b08_hdr + ",".join(b08_tokens[:-1] + ["x"]))
    add("out-of-range-d-256", reject(OUT_OF_RANGE), "3" + " ".join(d[:-1] + ["256"]))
    add("out-of-range-d-negative", reject(OUT_OF_RANGE), "3" + " ".join(d[:-1] + ["-5"]))
    add("out-of-range-d-v2", reject(OUT_OF_RANGE, 3), "~3:1:3" + " ".join(d[:-1] + ["999"]))
    for name, token in {"nan": "nan", "minus-inf": "-inf", "infinity": "Infinity", "float32-overflow": "1e39",
                        "float64-overflow": "1e400"}.items():
        add(f"out-of-range-f-{name}", reject(OUT_OF_RANGE), "3" + " ".join(f[:-1] + [token]))
    add("out-of-range-bigdl08", reject(OUT_OF_RANGE), b08_hdr + ",".join(b08_tokens[:-1] + ["200"]))
    add("out-of-range-bigdl08-fraction", reject(OUT_OF_RANGE), b08_hdr + ",".join(b08_tokens[:-1] + ["1.5"]))
    return out


def render() -> bytes:
    """The corpus text: one case per line, ``name TAB expected TAB input line``."""
    return b"".join(b"%s\t%s\t%s\n" % (name.encode(), expected.encode(), line) for name, expected, line in cases())


def main() -> None:
    CORPUS.write_bytes(gzip.compress(render(), mtime=0))
    print(f"{CORPUS}: {len(cases())} cases, {CORPUS.stat().st_size} bytes")


if __name__ == "__main__":
    main()
