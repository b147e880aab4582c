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
``Rejection`` with a reason, so the accounting ``received = decoded + rejected`` always holds.
"""

from __future__ import annotations

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
#: an integer line (%d or bigdl08: 0-255 pixels) in a block of %f lines (scaled floats): a block has one scale
MIXED_SCALES = "integer line among %f lines"
TOO_LONG = "line too long"
OUT_OF_RANGE = "value out of range"


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
    are 0-255 integers (``%d`` text, binary) rather than scaled floats (``%f`` text).
    ``seq`` and ``sent_ns`` are -1 / 0 for v1 lines.
    """

    labels: np.ndarray
    images: np.ndarray
    seq: np.ndarray
    sent_ns: np.ndarray
    raw: bool = False
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


def _split_header(line: bytes) -> tuple[int, int, bytes] | None:
    """``(seq, sent_ns, v1 line)`` of a v2 line, or None when the header is malformed."""
    parts = line[1:].split(b":", 2)
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
        return None
    return int(parts[0]), int(parts[1]), parts[2]


def decode_lines(lines: Sequence[bytes]) -> Decoded:
    """Decode a block of text lines (v1, v2, Scala comma or bigdl08 format, without newlines).

    Headers and labels are checked per line in Python (cheap); all pixel values of the
    block are parsed in one vectorised pass by :func:`parse_block`.
    """
    labels: list[int] = []
    seqs: list[int] = []
    times: list[int] = []
    payloads: list[bytes] = []
    rejected: list[tuple[str, bytes]] = []
    rejected_seq: list[int] = []  # v2 lines whose header was fine but whose payload was not
    sent_total = None
    b08 = _BigDL08Lines()
    for line in lines:
        if len(line) > MAX_LINE:
            rejected.append((TOO_LONG, line[:80]))
            continue
        seq, sent_ns = -1, 0
        if line[:1] == V2_PREFIX:
            if line.startswith(V2_END) and line[len(V2_END):].strip().isdigit():
                sent_total = int(line[len(V2_END):])
                continue
            header = _split_header(line)
            if header is None:
                rejected.append((BAD_HEADER, line[:80]))
                continue
            seq, sent_ns, line = header
        if b08.take(line, seq, sent_ns, rejected, rejected_seq):
            continue
        payload = line[2:] if line[1:2] == b"," else line[1:]
        reason = None if line[:1].isdigit() else BAD_LABEL
        if not payload.strip():
            reason = EMPTY
        if reason:
            rejected.append((reason, line[:80]))
            if seq >= 0:
                rejected_seq.append(seq)
            continue
        labels.append(line[0] - _ZERO)
        seqs.append(seq)
        times.append(sent_ns)
        payloads.append(payload)
    values, reasons, raw = parse_block(payloads)
    if raw and len(values):
        pixel = ((values >= 0) & (values <= 255)).all(axis=1)
        reasons = [r or (None if ok else OUT_OF_RANGE) for r, ok in zip(reasons, pixel.tolist())]
    if b08.payloads:
        b08_values, b08_reasons = b08.parse()
        if payloads and not raw:
            b08_reasons = [r or MIXED_SCALES for r in b08_reasons]
        raw = raw or not payloads
        values = np.concatenate([values, b08_values])
        reasons = reasons + b08_reasons
        labels, seqs, times, payloads = labels + b08.labels, seqs + b08.seqs, times + b08.times, payloads + b08.payloads
    keep = [i for i, r in enumerate(reasons) if r is None]
    dropped = [i for i, r in enumerate(reasons) if r is not None]
    rejected += [(reasons[i], payloads[i][:80]) for i in dropped]  # type: ignore[misc]
    rejected_seq += [seqs[i] for i in dropped]
    return Decoded(
        labels=np.asarray(labels, np.int64)[keep],
        images=values[keep].reshape(-1, *IMAGE_SHAPE),
        seq=np.asarray(seqs, np.int64)[keep],
        sent_ns=np.asarray(times, np.int64)[keep],
        raw=raw,
        rejected=rejected,
        sent_total=sent_total,
        rejected_seq=np.asarray(rejected_seq, np.int64),
    )


class _BigDL08Lines:
    """The bigdl08 lines of a block, set aside by :func:`decode_lines` and parsed together."""

    def __init__(self):
        self.labels: list[int] = []
        self.seqs: list[int] = []
        self.times: list[int] = []
        self.payloads: list[bytes] = []

    def take(self, line: bytes, seq: int, sent_ns: int, rejected: list, rejected_seq: list) -> bool:
        """Keep (or reject) ``line`` if it is a bigdl08 line — a label with a dot before the first comma."""
        comma = line.find(b",", 0, 6)
        if comma < 2 or b"." not in line[:comma]:
            return False
        try:
            label1 = float(line[:comma])
        except ValueError:
            label1 = -1.0
        parts = line[comma + 1:].split(b",", 8)
        reason = None
        if not (1 <= label1 <= 10 and label1.is_integer()):
            reason = BAD_LABEL
        elif len(parts) < 9:
            reason = WRONG_LENGTH
        if reason:
            rejected.append((reason, line[:80]))
            if seq >= 0:
                rejected_seq.append(seq)
            return True
        self.labels.append(int(label1) - 1)
        self.seqs.append(seq)
        self.times.append(sent_ns)
        self.payloads.append(parts[8])
        return True

    def parse(self) -> tuple[np.ndarray, list[str | None]]:
        """(0-255 RGB values (N, 3072), reason per line): signed BGR bytes unsigned and reordered."""
        values, reasons, _ = parse_block(self.payloads)
        signed_byte = (values >= -128) & (values <= 127) & (values == np.round(values))
        reasons = [r or (None if ok else OUT_OF_RANGE) for r, ok in zip(reasons, signed_byte.all(axis=1))]
        rgb = np.mod(values, 256).reshape(len(values), -1, 3)[:, :, ::-1]
        return np.ascontiguousarray(rgb.reshape(len(values), PIXELS), np.float32), reasons


_POW10 = 10.0 ** np.arange(24)


def parse_block(payloads: Sequence[bytes]) -> tuple[np.ndarray, list[str | None], bool]:
    """Parse the numbers of many payloads at once.

    Returns ``(values float32 (N, 3072), reason per payload (None when valid), raw)``.
    Rows whose reason is not None hold garbage.  ``raw`` is True when no value had a
    decimal point (``%d`` text).

    This is the hot path of every text receiver.  Instead of one ``float()`` per value it
    works on the bytes of the whole block with numpy.  The fast path (:func:`_parse_fixed`)
    covers what senders write — ``%d`` and ``%f`` (six decimals); anything else (garbage
    included) goes through the general parser, which also says what is wrong with each line.
    """
    n = len(payloads)
    if n == 0:
        return np.empty((0, PIXELS), np.float32), [], False
    buf = np.frombuffer(b"\n".join(payloads) + b"\n", dtype=np.uint8)
    fast = _parse_fixed(buf, n)
    if fast is not None:
        return fast
    return _parse_general(buf, n)


def _parse_fixed(buf: np.ndarray, n: int) -> tuple[np.ndarray, list[str | None], bool] | None:
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
    return values.astype(np.float32).reshape(n, PIXELS), [None] * n, False


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
    return values.reshape(n, PIXELS), [None] * n, True


def _parse_general(buf: np.ndarray, n: int) -> tuple[np.ndarray, list[str | None], bool]:
    """Any decimal notation, with a reason for every line that is not 3,072 numbers.

    Each digit contributes ``digit * 10**(digits after it in its token)`` to its token, a
    dot divides by ``10**(digits after the dot)``, a leading minus negates.
    """
    is_nl = buf == _NL
    is_sep = (buf == _SPACE) | is_nl | (buf == _COMMA)
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

    # Validity per token, then per line.
    digits_per_tok = digit_count[end_pos] - digit_count[start_pos] + is_digit[start_pos]
    bad_tok = (
        (np.bincount(tok_id[dot_idx], minlength=n_tok) > 1)
        | (np.bincount(tok_id[minus_idx], minlength=n_tok) > 1)
        | (digits_per_tok == 0)
        | (digits_per_tok > 23)
    )
    misplaced_minus = minus_idx[minus_idx != start_pos[tok_id[minus_idx]]]
    bad_bytes = np.flatnonzero(~(is_sep | is_digit | is_dot | is_minus))
    bad_lines = np.zeros(n, bool)
    bad_lines[line_of[bad_bytes]] = True
    bad_lines[line_of[start_pos[bad_tok]]] = True
    bad_lines[line_of[misplaced_minus]] = True
    tokens_per_line = np.bincount(line_of[start_pos], minlength=n)
    reasons: list[str | None] = [
        NOT_NUMERIC if bad else (WRONG_LENGTH if count != PIXELS else None)
        for bad, count in zip(bad_lines.tolist(), tokens_per_line.tolist())
    ]
    if len(dot_idx):  # a %f block: a line without any decimal point is %d text, on another scale
        undotted = np.bincount(line_of[dot_idx], minlength=n) == 0
        reasons = [r or (MIXED_SCALES if u else None) for r, u in zip(reasons, undotted.tolist())]
        bad_lines |= undotted
    out = np.zeros((n, PIXELS), np.float32)
    good = np.flatnonzero(~bad_lines & (tokens_per_line == PIXELS))
    if len(good):
        first_tok = np.cumsum(tokens_per_line) - tokens_per_line
        out[good] = values[first_tok[good][:, None] + np.arange(PIXELS)]
    return out, reasons, len(dot_idx) == 0


def decode_frames(data: bytes) -> Decoded:
    """Decode whole binary frames (``len(data)`` a multiple of ``FRAME_SIZE``)."""
    count = len(data) // FRAME_SIZE
    arr = np.frombuffer(data, np.uint8, count * FRAME_SIZE).reshape(count, FRAME_SIZE)
    hdr = np.frombuffer(
        arr[:, : FRAME_HEADER.size].tobytes(),
        dtype=np.dtype([("label", "u1"), ("seq", "<u4"), ("ns", "<i8")]),
    )
    end = np.flatnonzero(hdr["label"] == END_LABEL)
    sent_total = int(hdr["seq"][end[0]]) if len(end) else None
    valid = hdr["label"] < 10
    rejected = [(BAD_LABEL, bytes(arr[i, :16])) for i in np.flatnonzero(~valid & (hdr["label"] != END_LABEL))]
    return Decoded(
        labels=hdr["label"][valid].astype(np.int64),
        images=arr[valid, FRAME_HEADER.size:].reshape(-1, *IMAGE_SHAPE).astype(np.float32),
        seq=hdr["seq"][valid].astype(np.int64),
        sent_ns=hdr["ns"][valid],
        raw=True,
        rejected=rejected,
        sent_total=sent_total,
    )
