"""Stream formats between the sender and a classifier: pure encode/decode functions.

Text, v1 (the original's, byte for byte)::

    <label digit><v1> <v2> ... <v3072>\\n          e.g. "30.619608 0.623529 ..." or "3158 112 49 ..."

  i.e. the label digit followed directly by what ``numpy.savetxt(f, image.reshape(1, 3072), fmt=FMT)``
  writes, FMT being ``%f`` (floats scaled to [0, 1], optionally minus the training mean) or ``%d``
  (integers 0-255).  The Scala sender's ``label,v1,v2,...`` is accepted too.  An empty line ends
  the stream.

Text, bigdl08 (the original Scala sender's, accepted so its stream can feed any of our receivers)::

    <label+1>.0,0,0,0,32,0,0,0,32,<b>,<g>,<r>,...

  BigDL 0.8's ``ByteRecord`` as text: a 1-based float label, an 8-value size header, then the
  pixels in BGR order as *signed* bytes (-128..127).  Decoded to the same 0-255 RGB images.

Text, v2 (ours)::

    ~<seq>:<send time, ns since the epoch>:<v1 line>

  ``seq`` numbers images from 0 per sender, so a receiver can count lost, duplicated and
  reordered images; the timestamp gives end-to-end latency.  A v2 sender ends with
  ``~end:<images sent>`` before the empty line, so a receiver knows how many were sent.

Binary (ours, opt-in, for the fast path): the stream starts with ``MAGIC``, then fixed-size
frames ``<label u8><seq u32><send ns i64><3072 pixel bytes>``; label 255 ends the stream and
carries the number of images sent in ``seq``.

Decoders never raise on bad input: every line that is not a valid image is reported as a
rejection with a reason, so the accounting ``received = decoded + rejected`` always holds.

Text lines are judged one by one — a bad line rejects itself only, whatever its neighbours:

* **Compatibility.**  Every line the original ``infer_cifar.py`` accepted (``int(line[0])`` for the
  label, ``float(x) for x in line[1:].split()`` for the values) is accepted with the same values
  (``1e-3``, ``+.5``, ``5.``, tabs, runs of spaces, ``1_0`` ...), commas count as separators too,
  and the only exception is a value that is no pixel: ``nan``, ``inf`` or beyond float32
  (``value out of range``).  The vectorised parsers cover what senders write; a line they cannot
  vouch for is parsed by the original's rules (:func:`_reference_line`).
* **Scale per line.**  A line with a decimal point or an exponent in any value is a ``%f`` line
  (values as sent, model-ready); one without is a ``%d`` line (0-255, else ``value out of range``);
  bigdl08 lines are 0-255.  So one block may hold both scales: :func:`decode_blocks` returns one
  :class:`Decoded` per run of lines of one scale, in line order (what receivers use), and
  :func:`decode_lines` returns the whole block, whose ``raw`` is a per-image array only then.
* **Sequence numbers of rejected lines.**  Every rejected line whose v2 header is readable — too
  long ones included (the header is read from their first bytes) — gives its seq to
  ``Decoded.rejected_seq``; others give nothing, so ``len(rejected) - len(rejected_seq)`` counts
  the rejected lines without a sequence number.

Reasons, in the order they are checked: ``line too long``, ``bad v2 header``, ``empty payload``
(nothing after the label), ``bad label``, then for the values ``non-numeric characters``, ``wrong
number of values``, ``value out of range``.  ``tests/wire_corpus/`` pins these decisions, line by
line, for this module and the Scala receiver's parser (``scala/.../Wire.scala``).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

PIXELS = 32 * 32 * 3
IMAGE_SHAPE = (32, 32, 3)
V2_PREFIX = b"~"
V2_END = b"~end:"
MAGIC = b"IOTB\x01\n"
FRAME_HEADER = struct.Struct("<BIq")
FRAME_SIZE = FRAME_HEADER.size + PIXELS
END_LABEL = 255
#: Lines longer than this are rejected before parsing (a %f v2 line is ~28 KB).
MAX_LINE = 64 * 1024
BIGDL08_HEADER = b"0,0,0,32,0,0,0,32,"  # BigDL 0.8 ByteRecord's size header, as text

_SPACE, _NL, _COMMA, _DOT, _MINUS, _ZERO = 32, 10, 44, 46, 45, 48

# Reasons a line is rejected; stable strings, used as keys in reports.
EMPTY = "empty payload"
WRONG_LENGTH = "wrong number of values"
NOT_NUMERIC = "non-numeric characters"
BAD_LABEL = "bad label"
BAD_HEADER = "bad v2 header"
TOO_LONG = "line too long"
OUT_OF_RANGE = "value out of range"
#: a binary stream that ended inside a frame
PARTIAL_FRAME = "partial frame"
#: data after the stream's end marker (not images of this stream: counted as garbage)
AFTER_END = "data after the end marker"


# --------------------------------------------------------------------------- encoding


def _row_format(fmt: str, sep: str = " ") -> str:
    return sep.join([fmt] * PIXELS)


_FMT_CACHE: dict[tuple[str, str], str] = {}


def encode_payload(image: np.ndarray, fmt: str = "%f", sep: str = " ") -> bytes:
    """The 3,072 values of one image as ``numpy.savetxt`` writes one row (no newline)."""
    key = (fmt, sep)
    row_fmt = _FMT_CACHE.get(key) or _FMT_CACHE.setdefault(key, _row_format(fmt, sep))
    return (row_fmt % tuple(np.asarray(image).ravel().tolist())).encode("ascii")


def encode_v1(label: int, image: np.ndarray, fmt: str = "%f") -> bytes:
    """One v1 line, newline included: the label digit then the values."""
    return b"%d%s\n" % (label, encode_payload(image, fmt))


def encode_scala(label: int, image: np.ndarray) -> bytes:
    """Our Scala sender's ``label,v1,...,v3072`` integer line (``--format comma``; the original's is bigdl08)."""
    return b"%d,%s\n" % (label, encode_payload(image, "%d", ","))


def encode_bigdl08(label: int, image: np.ndarray) -> bytes:
    """The original Scala sender's line, newline included (see the module docstring)."""
    bgr = np.asarray(image, np.uint8)[..., ::-1].reshape(-1).astype(np.int8)
    return b"%s,%s%s\n" % (repr(float(label + 1)).encode(), BIGDL08_HEADER, encode_payload(bgr, "%d", ","))


def v2_header(seq: int, sent_ns: int) -> bytes:
    return b"~%d:%d:" % (seq, sent_ns)


def v2_trailer(images_sent: int) -> bytes:
    return b"%s%d\n" % (V2_END, images_sent)


def encode_frame(label: int, image: np.ndarray, seq: int, sent_ns: int) -> bytes:
    """One binary frame; ``image`` must be uint8."""
    return FRAME_HEADER.pack(label, seq, sent_ns) + np.asarray(image, dtype=np.uint8).tobytes()


def end_frame(images_sent: int) -> bytes:
    return FRAME_HEADER.pack(END_LABEL, images_sent, 0) + bytes(PIXELS)


# --------------------------------------------------------------------------- decoding


@dataclass
class Decoded:
    """A block of decoded images plus what was rejected on the way.

    ``images`` are float32 (N, 32, 32, 3) with the values as sent; ``raw`` says whether they
    are 0-255 integers (``%d`` text, bigdl08, binary) rather than ``%f`` floats (model-ready values).
    Every block from :func:`decode_blocks` and :func:`decode_frames` has one scale, so ``raw`` is
    a bool; only :func:`decode_lines` of a block that mixes scales gives a per-image bool array.
    ``seq`` and ``sent_ns`` are -1 / 0 for v1 lines.  ``rejected`` is in line order;
    ``rejected_seq`` holds the sequence number of each rejected line whose v2 header was readable
    (in line order), so ``len(rejected) - len(rejected_seq)`` is the number rejected without one.
    """

    labels: np.ndarray
    images: np.ndarray
    seq: np.ndarray
    sent_ns: np.ndarray
    raw: bool | np.ndarray = False
    rejected: list[tuple[str, bytes]] = field(default_factory=list)
    sent_total: int | None = None  # from a v2 trailer or end frame
    rejected_seq: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))

    def __len__(self) -> int:
        return len(self.labels)


def empty_decoded() -> Decoded:
    return Decoded(
        np.empty(0, np.int64),
        np.empty((0, *IMAGE_SHAPE), np.float32),
        np.empty(0, np.int64),
        np.empty(0, np.int64),
    )


#: Separators between values: ASCII whitespace as ``str.split()`` knows it, and the comma.
_WHITESPACE = b" \t\r\x0b\x0c\x1c\x1d\x1e\x1f"
_SEPARATORS = _WHITESPACE + b","
_IS_SEPARATOR = np.zeros(256, bool)
_IS_SEPARATOR[list(_SEPARATORS + b"\n")] = True
_INT64_MAX = 2**63 - 1
_HEADER_MAX = 1 + 18 + 1 + 19 + 1  # "~" seq ":" ns ":"
_BIGDL08_LABEL = re.compile(rb"[0-9]+\.[0-9]*")


def _split_header(line: bytes) -> tuple[int, int, bytes] | None:
    """``(seq, sent_ns, v1 line)`` of a v2 line, or None when the header is malformed.

    ``seq`` has 1-18 digits and ``sent_ns`` 1-19 digits within int64, so both fit the int64 arrays.
    """
    parts = line[1:].split(b":", 2)
    if len(parts) != 3:
        return None
    seq, ns = parts[0], parts[1]
    if not (0 < len(seq) <= 18 and seq.isdigit() and 0 < len(ns) <= 19 and ns.isdigit()) or int(ns) > _INT64_MAX:
        return None
    return int(seq), int(ns), parts[2]


def _trailer(line: bytes) -> int | None:
    """The count of a ``~end:N`` line (N: 1-18 digits, surrounding whitespace allowed), else None."""
    if not line.startswith(V2_END):
        return None
    count = line[len(V2_END):].strip(_WHITESPACE)
    return int(count) if 0 < len(count) <= 18 and count.isdigit() else None


class _Lines:
    """What :func:`decode_lines` collects per line before the vectorised parse: candidates and rejections."""

    def __init__(self) -> None:
        self.pos: list[int] = []
        self.labels: list[int] = []
        self.seqs: list[int] = []
        self.times: list[int] = []
        self.payloads: list[bytes] = []

    def add(self, pos: int, label: int, seq: int, sent_ns: int, payload: bytes) -> None:
        self.pos.append(pos)
        self.labels.append(label)
        self.seqs.append(seq)
        self.times.append(sent_ns)
        self.payloads.append(payload)


def _scan(lines: Sequence[bytes]):
    """Headers, labels and formats, per line in Python (cheap): text and bigdl08 candidates, rejections, trailer."""
    text, b08 = _Lines(), _Lines()
    rejects: list[tuple[int, str, bytes, int]] = []  # (position, reason, sample, seq or -1)
    sent_total = None
    for pos, line in enumerate(lines):
        seq, sent_ns = -1, 0
        if len(line) > MAX_LINE:  # the header, when readable, is in the first bytes: keep its seq
            header = _split_header(line[:_HEADER_MAX]) if line[:1] == V2_PREFIX else None
            rejects.append((pos, TOO_LONG, line[:80], header[0] if header else -1))
            continue
        if line[:1] == V2_PREFIX:
            total = _trailer(line)
            if total is not None:
                sent_total = total
                continue
            header = _split_header(line)
            if header is None:
                rejects.append((pos, BAD_HEADER, line[:80], -1))
                continue
            seq, sent_ns, line = header
        reason, label, payload, kind = _classify(line)
        if reason:
            rejects.append((pos, reason, line[:80], seq))
        else:
            (b08 if kind else text).add(pos, label, seq, sent_ns, payload)
    return text, b08, rejects, sent_total


def _classify(body: bytes) -> tuple[str | None, int, bytes, bool]:
    """``(reason or None, label, payload, is bigdl08)`` of a line without its v2 header."""
    if not body:
        return EMPTY, 0, b"", False
    if not body[:1].isdigit():
        return BAD_LABEL, 0, b"", False
    comma = body.find(b",", 0, 6)
    if comma >= 2 and b"." in body[:comma]:  # bigdl08: "<label+1>.0,<size header>,<pixels>"
        label1 = body[:comma]
        if not _BIGDL08_LABEL.fullmatch(label1) or not (1 <= float(label1) <= 10 and float(label1).is_integer()):
            return BAD_LABEL, 0, b"", True
        if not body.startswith(BIGDL08_HEADER, comma + 1):
            return WRONG_LENGTH, 0, b"", True
        payload = body[comma + 1 + len(BIGDL08_HEADER):]
        return (None if payload.strip(_SEPARATORS) else EMPTY), int(float(label1)) - 1, payload, True
    payload = body[2:] if body[1:2] == b"," else body[1:]
    return (None if payload.strip(_SEPARATORS) else EMPTY), body[0] - _ZERO, payload, False


def _decode(lines: Sequence[bytes]) -> tuple[Decoded, np.ndarray]:
    """All images of the block in line order, and the scale of each (True: 0-255)."""
    text, b08, rejects, sent_total = _scan(lines)
    values, reasons, raw = parse_block(text.payloads)
    if raw.any():
        in_range = ((values >= 0) & (values <= 255)).all(axis=1) | ~raw
        reasons = [r or (None if ok else OUT_OF_RANGE) for r, ok in zip(reasons, in_range.tolist())]
    if b08.payloads:
        b08_values, b08_reasons = _parse_bigdl08(b08.payloads)
        values = np.concatenate([values, b08_values])
        reasons = reasons + b08_reasons
        raw = np.concatenate([raw, np.ones(len(b08_values), bool)])
    pos = np.asarray(text.pos + b08.pos, np.int64)
    labels = np.asarray(text.labels + b08.labels, np.int64)
    seqs = np.asarray(text.seqs + b08.seqs, np.int64)
    times = np.asarray(text.times + b08.times, np.int64)
    payloads = text.payloads + b08.payloads
    rejects += [(int(pos[i]), r, payloads[i][:80], int(seqs[i])) for i, r in enumerate(reasons) if r is not None]
    rejects.sort(key=lambda r: r[0])
    keep = np.asarray([i for i, r in enumerate(reasons) if r is None], np.int64)
    keep = keep[np.argsort(pos[keep], kind="stable")]  # line order (text and bigdl08 lines were parsed apart)
    decoded = Decoded(
        labels=labels[keep],
        images=values[keep].reshape(-1, *IMAGE_SHAPE),
        seq=seqs[keep],
        sent_ns=times[keep],
        rejected=[(reason, sample) for _, reason, sample, _ in rejects],
        sent_total=sent_total,
        rejected_seq=np.asarray([seq for *_, seq in rejects if seq >= 0], np.int64),
    )
    return decoded, raw[keep]


def decode_blocks(lines: Sequence[bytes]) -> list[Decoded]:
    """Decode a block of text lines into blocks of one pixel scale each (what a receiver classifies).

    Each line is judged on its own (see :func:`decode_lines`); consecutive images of one scale
    form one block, in line order, so a stray ``%f`` line among ``%d`` lines splits the block in
    three instead of costing its neighbours.  The first block carries the rejections and the
    trailer of the whole input (possibly with no images); there is always at least one block.
    """
    decoded, raw = _decode(lines)
    if not len(raw) or raw.all() or not raw.any():
        decoded.raw = bool(raw.all()) if len(raw) else False
        return [decoded]
    cuts = [0, *(np.flatnonzero(raw[1:] != raw[:-1]) + 1).tolist(), len(raw)]
    blocks = []
    for start, stop in zip(cuts[:-1], cuts[1:]):
        first = not blocks
        blocks.append(Decoded(
            decoded.labels[start:stop], decoded.images[start:stop], decoded.seq[start:stop],
            decoded.sent_ns[start:stop], raw=bool(raw[start]),
            rejected=decoded.rejected if first else [], sent_total=decoded.sent_total if first else None,
            rejected_seq=decoded.rejected_seq if first else np.empty(0, np.int64),
        ))
    return blocks


def decode_lines(lines: Sequence[bytes]) -> Decoded:
    """Decode a block of text lines (v1, v2, Scala comma or bigdl08 format, without newlines).

    Headers and labels are checked per line in Python (cheap); the pixel values of the block
    are parsed in one vectorised pass by :func:`parse_block`.  Each line gets its own verdict:
    its scale, its reason when rejected.  ``raw`` is one bool when every image has the same
    scale (every block a sender writes); a block that mixes scales gets a per-image bool array
    — receivers use :func:`decode_blocks`, which splits such a block instead.
    """
    decoded, raw = _decode(lines)
    decoded.raw = raw if len(raw) and raw.any() != raw.all() else bool(len(raw) and raw.all())
    return decoded


def _parse_bigdl08(payloads: list[bytes]) -> tuple[np.ndarray, list[str | None]]:
    """(0-255 RGB values (N, 3072), reason per line): signed BGR bytes (-128..127) unsigned and reordered."""
    values, reasons, _ = parse_block(payloads)
    signed_byte = ((values >= -128) & (values <= 127) & (values == np.round(values))).all(axis=1)
    reasons = [r or (None if ok else OUT_OF_RANGE) for r, ok in zip(reasons, signed_byte.tolist())]
    rgb = np.mod(values, 256).reshape(len(values), -1, 3)[:, :, ::-1]
    return np.ascontiguousarray(rgb.reshape(len(values), PIXELS), np.float32), reasons


_POW10 = 10.0 ** np.arange(24)
#: Tokens with more digits go to :func:`_reference_line`: below 10**15 the vectorised sum is exact.
_EXACT_DIGITS = 15


def parse_block(payloads: Sequence[bytes]) -> tuple[np.ndarray, list[str | None], np.ndarray]:
    """Parse the numbers of many payloads at once.

    Returns ``(values float32 (N, 3072), reason per payload (None when valid), raw per payload)``.
    Rows whose reason is not None hold garbage.  ``raw`` is True for a line without a decimal
    point or exponent (``%d`` text: its 0-255 range is checked by the caller).

    This is the hot path of every text receiver.  Instead of one ``float()`` per value it
    works on the bytes of the whole block with numpy.  The fast path (:func:`_parse_fixed`)
    covers what senders write — ``%d`` and ``%f`` (six decimals); anything else (garbage
    included) goes through the general parser, which also says what is wrong with each line.
    """
    n = len(payloads)
    if n == 0:
        return np.empty((0, PIXELS), np.float32), [], np.empty(0, bool)
    buf = np.frombuffer(b"\n".join(payloads) + b"\n", dtype=np.uint8)
    fast = _parse_fixed(buf, n)
    if fast is not None:
        return fast
    return _parse_general(buf, n)


def _parse_fixed(buf: np.ndarray, n: int) -> tuple[np.ndarray, list[str | None], np.ndarray] | None:
    """Parse a block written by a sender: every token ``%d`` (1-3 digits) or ``%f`` (``-?d.dddddd``).

    Works from landmarks found in one pass (the dots, or the separators) and gathers only
    the few bytes around each, so the cost is per value, not per byte of text.  Returns
    None (the caller falls back to the general parser) as soon as anything does not fit.
    """
    nl = np.flatnonzero(buf == _NL)
    if len(nl) != n:
        return None
    dots = np.flatnonzero(buf == _DOT)
    if len(dots):
        return _parse_six_decimals(buf, n, nl, dots)
    return _parse_small_ints(buf, n, nl)


def _parse_six_decimals(buf: np.ndarray, n: int, nl: np.ndarray, dots: np.ndarray):
    if len(dots) != n * PIXELS or dots[0] < 1 or dots[-1] + 7 >= len(buf):
        return None
    # Each line must hold exactly PIXELS dots, i.e. the k-th newline follows the (k*PIXELS)-th dot.
    last_dot_of_line = dots[PIXELS - 1 :: PIXELS]
    first_dot_of_next = dots[PIXELS::PIXELS]
    if (last_dot_of_line > nl).any() or (first_dot_of_next < nl[:-1]).any():
        return None
    digit_at = [buf[dots + k] - _ZERO for k in (-1, 1, 2, 3, 4, 5, 6)]
    if any((d > 9).any() for d in digit_at):  # uint8: non-digits wrap to large values
        return None
    after = buf[dots + 7]
    if ((after != _SPACE) & (after != _NL)).any():
        return None
    before = buf[np.maximum(dots - 2, 0)]
    neg = before == _MINUS
    neg[0] &= dots[0] >= 2
    start = dots - 1 - neg  # first byte of each token
    prev = buf[np.maximum(start - 1, 0)]
    token_starts_ok = (prev == _SPACE) | (prev == _NL) | (start == 0)
    token_starts_ok[::PIXELS] = (start[::PIXELS] == 0) | (prev[::PIXELS] == _NL)
    if not token_starts_ok.all():
        return None
    # Structure is right for every token; the byte count proves there is nothing in between.
    if len(buf) != n * (PIXELS * 9) + int(neg.sum()):
        return None
    mantissa = digit_at[0].astype(np.int32) * 1_000_000
    for k, scale in zip(range(1, 7), (100_000, 10_000, 1_000, 100, 10, 1)):
        mantissa += digit_at[k].astype(np.int32) * scale
    values = mantissa / 1e6  # exact integer / 1e6 in float64: rounds like float(text)
    values[neg] *= -1
    return values.astype(np.float32).reshape(n, PIXELS), [None] * n, np.zeros(n, bool)


def _parse_small_ints(buf: np.ndarray, n: int, nl: np.ndarray):
    seps = np.flatnonzero((buf == _SPACE) | (buf == _COMMA) | (buf == _NL))
    if len(seps) != n * PIXELS or (seps[PIXELS - 1 :: PIXELS] != nl).any():
        return None
    if np.count_nonzero((buf - _ZERO) < 10) + len(seps) != len(buf):
        return None  # something other than digits and separators
    ends = seps - 1
    length = np.diff(seps, prepend=-1) - 1
    if length.min() < 1 or length.max() > 3:
        return None
    values = (buf[ends] - _ZERO).astype(np.float32)
    for k in (1, 2):  # tens, hundreds: only where the token is long enough
        digit = buf[np.maximum(ends - k, 0)].astype(np.float32) - _ZERO
        values += np.where(length > k, digit * 10.0**k, 0)
    return values.reshape(n, PIXELS), [None] * n, np.ones(n, bool)


def _parse_general(buf: np.ndarray, n: int) -> tuple[np.ndarray, list[str | None], np.ndarray]:
    """Any decimal notation, with a reason for every line that is not 3,072 numbers.

    Each digit contributes ``digit * 10**(digits after it in its token)`` to its token, a
    dot divides by ``10**(digits after the dot)``, a leading minus negates: exact (the float
    ``float()`` gives) for tokens of up to 15 digits.  A line with anything else — ``+``,
    exponents, longer tokens, or garbage — is handed to :func:`_reference_line`, the original
    receiver's parser, which accepts what it accepted and names what is wrong with the rest.
    """
    is_nl = buf == _NL
    is_sep = _IS_SEPARATOR[buf]
    is_digit = (buf - _ZERO) < 10  # uint8 wrap-around makes every non-digit large
    is_dot = buf == _DOT
    is_minus = buf == _MINUS
    line_of = np.cumsum(is_nl) - is_nl  # line index of each byte (a newline belongs to its line)

    # A token starts at a non-separator after a separator, and ends before one.
    tok_start = ~is_sep
    tok_start[1:] &= is_sep[:-1]
    tok_end = ~is_sep
    tok_end[:-1] &= is_sep[1:]
    start_pos, end_pos = np.flatnonzero(tok_start), np.flatnonzero(tok_end)
    n_tok = len(start_pos)
    tok_id = np.cumsum(tok_start) - 1  # token of each byte inside a token

    digit_count = np.cumsum(is_digit)
    digits_after = digit_count[end_pos][tok_id] - digit_count  # digits to the right, same token
    didx = np.flatnonzero(is_digit)
    mantissa = np.bincount(
        tok_id[didx],
        weights=(buf[didx] - _ZERO) * _POW10[np.minimum(digits_after[didx], 23)],
        minlength=n_tok,
    )
    dot_idx = np.flatnonzero(is_dot)
    decimals = np.zeros(n_tok, np.int64)
    decimals[tok_id[dot_idx]] = digits_after[dot_idx]
    values = mantissa / _POW10[np.minimum(decimals, 23)]
    minus_idx = np.flatnonzero(is_minus)
    values[tok_id[minus_idx]] *= -1

    # Lines the vectorised rules cannot vouch for, per token then per line.
    digits_per_tok = digit_count[end_pos] - digit_count[start_pos] + is_digit[start_pos]
    odd_tok = (
        (np.bincount(tok_id[dot_idx], minlength=n_tok) > 1)
        | (np.bincount(tok_id[minus_idx], minlength=n_tok) > 1)
        | (digits_per_tok == 0)
        | (digits_per_tok > _EXACT_DIGITS)
    )
    misplaced_minus = minus_idx[minus_idx != start_pos[tok_id[minus_idx]]]
    odd_bytes = np.flatnonzero(~(is_sep | is_digit | is_dot | is_minus))
    odd_lines = np.zeros(n, bool)
    odd_lines[line_of[odd_bytes]] = True
    odd_lines[line_of[start_pos[odd_tok]]] = True
    odd_lines[line_of[misplaced_minus]] = True
    tokens_per_line = np.bincount(line_of[start_pos], minlength=n)
    raw = np.bincount(line_of[dot_idx], minlength=n) == 0  # no decimal point: a %d line
    reasons: list[str | None] = [
        EMPTY if count == 0 else (WRONG_LENGTH if count != PIXELS else None) for count in tokens_per_line.tolist()
    ]
    out = np.zeros((n, PIXELS), np.float32)
    good = np.flatnonzero(~odd_lines & (tokens_per_line == PIXELS))
    if len(good):
        first_tok = np.cumsum(tokens_per_line) - tokens_per_line
        out[good] = values[first_tok[good][:, None] + np.arange(PIXELS)]
    odd = np.flatnonzero(odd_lines)
    if len(odd):
        nl = np.flatnonzero(is_nl)
        starts = np.concatenate([[0], nl[:-1] + 1])
        data = buf.tobytes()
        for i in odd.tolist():
            row, reasons[i], raw[i] = _reference_line(data[starts[i]:nl[i]])
            if row is not None:
                out[i] = row
    return out, reasons, raw


def _reference_line(payload: bytes) -> tuple[np.ndarray | None, str | None, bool]:
    """``(values, reason, raw)`` of one payload by the original receiver's rules, ``float(x) for x in
    payload.split()`` on its UTF-8 text (commas are separators too): what it accepted is accepted,
    with the same values, except non-finite ones (``nan``, ``inf``, beyond float32), which are no pixels.
    """
    try:
        text = payload.decode("utf-8")
        numbers = [float(token) for token in text.replace(",", " ").split()]
    except (UnicodeDecodeError, ValueError):
        return None, NOT_NUMERIC, False
    if not numbers:
        return None, EMPTY, False
    if len(numbers) != PIXELS:
        return None, WRONG_LENGTH, False
    with np.errstate(over="ignore"):
        row = np.asarray(numbers, np.float64).astype(np.float32)
    if not np.isfinite(row).all():
        return None, OUT_OF_RANGE, False
    return row, None, not any(c in text for c in ".eE")


def decode_frames(data: bytes) -> Decoded:
    """Decode whole binary frames (``len(data)`` a multiple of ``FRAME_SIZE``), up to the end frame.

    A frame with a label other than 0-9 or ``END_LABEL`` is rejected (``BAD_LABEL``) but its
    sequence number is kept in ``rejected_seq``: its header arrived, so it is not lost.  Frames
    after the end frame belong to no stream; :func:`frames_after_end` counts them.
    """
    count = len(data) // FRAME_SIZE
    arr = np.frombuffer(data, np.uint8, count * FRAME_SIZE).reshape(count, FRAME_SIZE)
    hdr = np.frombuffer(
        arr[:, : FRAME_HEADER.size].tobytes(),
        dtype=np.dtype([("label", "u1"), ("seq", "<u4"), ("ns", "<i8")]),
    )
    end = np.flatnonzero(hdr["label"] == END_LABEL)
    sent_total = int(hdr["seq"][end[0]]) if len(end) else None
    if len(end):
        arr, hdr = arr[: end[0]], hdr[: end[0]]
    valid = hdr["label"] < 10
    bad = np.flatnonzero(~valid)
    return Decoded(
        labels=hdr["label"][valid].astype(np.int64),
        images=arr[valid, FRAME_HEADER.size:].reshape(-1, *IMAGE_SHAPE).astype(np.float32),
        seq=hdr["seq"][valid].astype(np.int64),
        sent_ns=hdr["ns"][valid],
        raw=True,
        rejected=[(BAD_LABEL, bytes(arr[i, :16])) for i in bad],
        sent_total=sent_total,
        rejected_seq=hdr["seq"][bad].astype(np.int64),
    )


def frames_after_end(data: bytes) -> int:
    """Whole frames that follow the first end frame in ``data`` (0 when there is no end frame)."""
    labels = np.frombuffer(data, np.uint8, (len(data) // FRAME_SIZE) * FRAME_SIZE)[::FRAME_SIZE]
    end = np.flatnonzero(labels == END_LABEL)
    return int(len(labels) - end[0] - 1) if len(end) else 0
