"""The golden wire corpus (tests/wire_corpus/): the Python decoder and the Scala receiver's parser agree with it.

Each case is one line and its expected verdict (label, pixel scale, sequence number and pixel checksum, or the
rejection reason), stated by the corpus generator, not computed by either decoder.
"""

from __future__ import annotations

import gzip
import subprocess

import numpy as np
import pytest

from iotbench import wire
from tests.wire_corpus import generate

REASONS = {wire.EMPTY, wire.WRONG_LENGTH, wire.NOT_NUMERIC, wire.BAD_LABEL, wire.BAD_HEADER, wire.TOO_LONG,
           wire.OUT_OF_RANGE}
SCALA_CLASS = "iotbench.WireCorpus"


def load() -> list[tuple[str, str, bytes]]:
    rows = gzip.decompress(generate.CORPUS.read_bytes()).split(b"\n")
    assert rows[-1] == b""
    return [(name.decode(), expected.decode(), line) for name, expected, line in (r.split(b"\t", 2) for r in rows[:-1])]


CORPUS = load()


def image_outcome(label: int, raw: bool, seq: int, image: np.ndarray) -> str:
    return f"ok:{label}:{'d' if raw else 'f'}:{seq}:{generate.checksum(image.ravel())}"


def outcome(line: bytes) -> str:
    """This decoder's verdict on one line, in the corpus's notation."""
    d = wire.decode_lines([line])
    if d.sent_total is not None:
        return f"end:{d.sent_total}"
    if d.rejected:
        seq = d.rejected_seq.tolist() or [-1]
        return f"reject:{seq[0]}:{d.rejected[0][0]}"
    return image_outcome(int(d.labels[0]), bool(d.raw), int(d.seq[0]), d.images[0])


def test_corpus_is_what_its_generator_writes():
    assert gzip.decompress(generate.CORPUS.read_bytes()) == generate.render()
    assert generate.CORPUS.stat().st_size < 1_000_000


def test_corpus_covers_every_reason_and_every_format():
    reasons = {e.split(":", 2)[2] for _, e, _ in CORPUS if e.startswith("reject:")}
    assert reasons == REASONS
    names = [n for n, _, _ in CORPUS]
    for prefix in ("v1-f-", "v1-f-minus-mean", "v1-d-", "v2-f", "v2-d", "comma-d", "v2-comma", "bigdl08", "v2-bigdl08",
                   "trailer"):
        assert any(n.startswith(prefix) for n in names), prefix
    scales = {e.split(":")[2] for _, e, _ in CORPUS if e.startswith("ok:")}
    assert scales == {"f", "d"}
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("name, expected, line", CORPUS, ids=[c[0] for c in CORPUS])
def test_python_decoder_gives_each_line_its_expected_verdict(name, expected, line):
    assert outcome(line) == expected


def test_one_block_of_all_cases_gives_each_line_the_same_verdict():
    """Lines judged on their own: together (every scale and reason mixed) as alone; blocks split per scale."""
    for order in (CORPUS, CORPUS[::-1]):
        blocks = wire.decode_blocks([line for _, _, line in order])
        images = [image_outcome(int(lb), b.raw, int(s), im)
                  for b in blocks for lb, s, im in zip(b.labels, b.seq, b.images)]
        assert all(isinstance(b.raw, bool) for b in blocks) and len(blocks) > 2
        assert images == [e for _, e, _ in order if e.startswith("ok:")]
        first = blocks[0]
        assert [r for r, _ in first.rejected] == [e.split(":", 2)[2] for _, e, _ in order if e.startswith("reject:")]
        want_seq = [int(e.split(":")[1]) for _, e, _ in order if e.startswith("reject:")]
        assert first.rejected_seq.tolist() == [s for s in want_seq if s >= 0]
        assert len(first.rejected) - len(first.rejected_seq) == want_seq.count(-1)
        assert all(b.rejected == [] and b.sent_total is None for b in blocks[1:])


@pytest.mark.scala
def test_scala_parser_gives_each_line_the_same_verdict(scala_jar):
    """The same file through Wire.scala (the Scala receiver's parser): one ``name TAB verdict`` line per case."""
    from iotbench import scala_build

    cmd = scala_build.java_command(scala_jar, SCALA_CLASS, [str(generate.CORPUS)], heap="512m")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    got = dict(line.split("\t", 1) for line in proc.stdout.splitlines())
    want = {name: expected for name, expected, _ in CORPUS}
    assert {n: got.get(n) for n in want if got.get(n) != want[n]} == {}
    assert proc.returncode == 0 and f"{len(want)} cases agree" in proc.stderr
