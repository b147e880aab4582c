"""README.md, executed: every command example in its fenced bash/sh/console blocks, and the examples of
``iotbench --help``, runs here and must end on its own printing what it claims.

Why: a README drifts from the code one flag at a time, and a new user's first hour is spent on exactly
those examples.  The examples are collected from the files at collection time (one test per example,
its id the example's text), so an edited example is retested without touching this file.

How an example is read:

* A fenced block tagged ``bash``, ``sh`` or ``console`` holds examples.  A full-line comment starts a new
  example (it is the example's title) and so does a blank line; in a block without full-line comments,
  every command line is an example of its own.  In ``console`` blocks commands start with ``$``.
* A comment line ``# → TEXT`` (or, in console blocks, a line without ``$``) is a claim: a line the
  example prints.  ``…`` in a claim stands for anything.
* An example is one shell script: lines ending in ``&`` run in the background, ``wait`` waits for them.
  The ``iotbench --help`` examples are one line each; a ``nc -l… PORT | receiver`` line is run in the
  background before the line that sends to that PORT, as two terminals would.

How it is run: ``bash`` after ``source scripts/env.sh`` (what the README asks for), in the repository,
under a timeout guard (its process group is killed; an example that does not end on its own fails).
Ports, file names and sizes go through the explicit tables below (:data:`FILES`, :data:`SIZES`,
:func:`map_ports`).  Two sizes per example: ``small`` (:data:`SIZES` applied; CI) and ``full`` (as
written, marked ``slow``), because a claim's exact figures hold only at the written size.

What is checked: exit status 0, and every claim.  In a claim, an image count that :data:`CLAIM_COUNTS`
maps must be the small count, other integers are free at the small size, and a percentage must be
within :data:`TOLERANCE_POINTS` of the claim's (exact, to the digits shown, at the full size).  An
example with no claim that classifies with a Keras model (the ``--help`` ones) must print its
``Inferenced N images`` line, with N the images sent and the accuracy within the tolerance of the
model card's test accuracy (``models/NAME.json``): that catches a stream sent at the wrong scale.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from fixtures.data import SHARED_MODELS
from iotbench.spark import free_port

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
LANGS = {"bash", "sh", "console"}
CLAIM = "# →"
TIMEOUT_S = {"small": 150, "full": 900}

#: Percentage points a claimed accuracy may differ by at the small size (the first few hundred test
#: images are not the whole test set; a stream at the wrong scale costs 10-70 points).
TOLERANCE_POINTS = 5.0

#: Examples not run here, and why (each entry must still match an example: see the last test).
SKIP: list[tuple[str, str]] = [
    (r"^make (bench|test)\b", "the whole benchmark or test suite: minutes (make test runs this file too)"),
    (r"^pytest benchmarks\b", "a benchmark run: minutes; make test's CI gate runs the benchmarks"),
    (r"^iotbench report \.benchmarks\b", "reads runs saved by an earlier --benchmark-autosave"),
    (r"spark://10\.0\.0\.5\b", "addresses the reader's own cluster: tests send only to loopback and to addresses they "
     "assign themselves (tests/test_cluster.py runs these paths against a worker in a network namespace)"),
]

#: Examples that take long even at the small size (Spark's JVM start and BigDL's engine: about a minute).
SLOW: list[tuple[str, str]] = [
    (r"\binfer (spark|scala)-|\binfer_cifar_(max|stream)\b", "starts Spark"),
]

#: Small sizes for the CI run: (pattern, replacement, why).  Rates stay as written.
SIZES: list[tuple[str, str, str]] = [
    (r"(-t|--totalImages|--total) (10000|2000)\b", r"\1 300", "300 images instead of 2,000 or the whole test set"),
    (r"(-r|--reportingInterval) 1000\b", r"\1 100", "a progress line every 100 of the 300 images"),
    (r"(-d|--duration) (10|30|60)\b", r"\1 2 --images 500", "a 2-second Spark loop over 500 images"),
]
#: Image counts named in claims, and what they become at the small size.
CLAIM_COUNTS = {"10000": "300", "2000": "300"}


def _legacy_h5() -> str:
    path = SHARED_MODELS / "cifar10_ResNet20v1_model_91470.h5"
    if not path.is_file():
        pytest.skip(f"the original's model file is not here ({path})")
    return str(path)


#: File names the examples use -> where they are here (a callable for files that may be missing).
FILES: dict[str, object] = {
    "cifar10_ResNet20v1_model_91470.h5": _legacy_h5,  # the original benchmark's file, a fixture where present
    "run.json": "{tmp}/run.json",
    "run1.json": "benchmarks/results/keras_stream_2core.json",
    "run2.json": "benchmarks/results/wire_tcp_2core.json",
    "cmp.png": "{tmp}/cmp.png",
}

#: The port the examples use; each run gets a free one instead (parallel runs, other users of the machine).
PORT = "10000"


@dataclass(frozen=True)
class Example:
    source: str
    line: int
    commands: tuple[str, ...]
    claims: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        return "\n".join(self.commands)

    @property
    def id(self) -> str:
        text = " ; ".join(c.strip() for c in self.commands if c.strip() not in ("wait", ""))
        text = re.sub(r"\s+", " ", text)
        return text if len(text) <= 90 else text[:89] + "…"


# --------------------------------------------------------------------------- collecting


def fenced_blocks(text: str) -> list[tuple[int, str, list[str]]]:
    """(line number of the first line inside, language, lines) of every fenced block."""
    blocks, lang, start, body = [], None, 0, []
    for number, line in enumerate(text.splitlines(), 1):
        fence = re.match(r"^\s*```(\S*)", line)
        if fence and lang is None:
            lang, start, body = fence.group(1).lower() or "text", number + 1, []
        elif fence:
            blocks.append((start, lang, body))
            lang = None
        elif lang is not None:
            body.append(line)
    return blocks


def examples_in_block(source: str, start: int, lang: str, lines: list[str]) -> list[Example]:
    """Split one block into examples (the rules are in the module docstring)."""
    console = lang == "console"

    def is_command(line: str) -> bool:
        return line.startswith("$ ") if console else bool(line.strip()) and not line.lstrip().startswith("#")

    def is_claim(line: str) -> bool:
        return line.lstrip().startswith(CLAIM) or (console and bool(line.strip()) and not line.startswith("$"))

    def is_title(line: str) -> bool:
        return line.lstrip().startswith("#") and not is_claim(line)

    titled = any(is_title(line) for line in lines)
    groups: list[tuple[int, list[str], list[str]]] = []
    number, commands, claims = start, [], []
    for offset, line in enumerate(lines):
        if is_claim(line):
            claims.append(line.strip() if console else line.lstrip()[len(CLAIM):].strip())
            continue
        if commands and (not line.strip() or is_title(line) or (not titled and is_command(line))):
            groups.append((number, commands, claims))
            commands, claims = [], []
        if is_command(line):
            number = number if commands else start + offset
            commands.append(line[2:] if console else line)
    if commands:
        groups.append((number, commands, claims))
    return [Example(source, number, tuple(cmds), tuple(claims)) for number, cmds, claims in groups]


def readme_examples() -> list[Example]:
    out = []
    for start, lang, lines in fenced_blocks(README.read_text()):
        if lang in LANGS:
            out += examples_in_block("README.md", start, lang, lines)
    return out


def help_examples() -> list[Example]:
    """The ``Examples:`` lines of ``iotbench --help``.

    One line is one example, except that a line ending in ``&`` (a server started in the background)
    belongs to the line after it, and a listening ``nc -l… PORT | receiver`` line is run in the background
    before the line that sends to that PORT; such a pair ends with ``wait``.
    """
    proc = subprocess.run([sys.executable, "-m", "iotbench", "--help"], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    lines = [line.strip() for line in proc.stdout.split("Examples:", 1)[-1].splitlines() if line.startswith("  ")]
    listeners = {m.group(1): line for line in lines if (m := re.match(r"^nc -\S*l\S*.*?(\d+)\s*\|", line))}
    out, used, pending = [], set(), []
    for line in lines:
        if line in listeners.values():
            continue
        if line.endswith("&"):
            pending.append(line)
            continue
        port = re.search(r"\|\s*nc\b.*?(\d+)\s*$", line)
        if port and port.group(1) in listeners:
            used.add(port.group(1))
            pending.append(listeners[port.group(1)] + " &")
            line = "sleep 1; " + line
        out.append(Example("iotbench --help", 0, (*pending, line, "wait") if pending else (line,)))
        pending = []
    out += [Example("iotbench --help", 0, (line,)) for p, line in listeners.items() if p not in used]
    return out


def _reason(table: list[tuple[str, str]], example: Example) -> str | None:
    for pattern, reason in table:
        if any(re.search(pattern, c.strip()) for c in example.commands):
            return reason
    return None


def _cases() -> list:
    cases, seen = [], set()
    for example in readme_examples() + help_examples():
        skip, slow = _reason(SKIP, example), _reason(SLOW, example)
        for size in ("small", "full"):
            name = f"{size}: {example.id}" + ("" if example.source == "README.md" else " [--help]")
            while name in seen:
                name += "'"
            seen.add(name)
            marks = [pytest.mark.skip(reason=skip)] if skip else []
            if size == "full" or slow:
                marks.append(pytest.mark.slow)
            cases.append(pytest.param(example, size, id=name, marks=marks))
    return cases


# --------------------------------------------------------------------------- running


def map_ports(text: str, port: int) -> str:
    """The example's port 10000 (not an image count) becomes ``port``."""
    return re.sub(r"(?<!-t )(?<!--total )(?<!--totalImages )\b" + PORT + r"\b", str(port), text)


def prepare(example: Example, size: str, tmp: Path) -> str:
    """The example's script, with the tables applied."""
    text = example.text
    for name, target in FILES.items():
        if re.search(rf"(?<![\w/.-]){re.escape(name)}\b", text):
            where = target() if callable(target) else str(target).format(tmp=tmp)
            text = re.sub(rf"(?<![\w/.-]){re.escape(name)}\b", where, text)
    if size == "small":
        for pattern, replacement, _ in SIZES:
            text = re.sub(pattern, replacement, text)
    return map_ports(text, free_port())


def run_script(script: str, timeout_s: float) -> tuple[int, str]:
    """Run ``script`` with bash after ``source scripts/env.sh``; kill its process group after ``timeout_s``."""
    full = f"source {shlex.quote(str(ROOT / 'scripts' / 'env.sh'))} >/dev/null\nset -o pipefail\n{script}\n"
    proc = subprocess.Popen(["bash", "-c", full], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"did not end on its own within {timeout_s:g} s (a listener that never exits, like nc -lk?)\n"
                    f"{script}\n--- output:\n{out[-4000:]}")
    return proc.returncode, out


_NUMBER = re.compile(r"\d+(?:\.\d+)?%?")


def claim_pattern(claim: str, size: str) -> tuple[re.Pattern, list[str]]:
    """A regex for one claimed line, and the percentages it claims (in the order of its groups)."""
    parts, percents = [], []
    for piece in re.split(r"(…|\.\.\.)", claim):
        if piece in ("…", "..."):
            parts.append(".*?")
            continue
        pos = 0
        for m in _NUMBER.finditer(piece):
            parts.append(re.escape(piece[pos:m.start()]))
            token = m.group()
            if token.endswith("%"):
                parts.append(r"(\d+(?:\.\d+)?)%")
                percents.append(token[:-1])
            elif size == "small" and token in CLAIM_COUNTS:
                parts.append(re.escape(CLAIM_COUNTS[token]))
            elif size == "small":
                parts.append(r"\d+(?:\.\d+)?")
            else:
                parts.append(re.escape(token))
            pos = m.end()
        parts.append(re.escape(piece[pos:]))
    return re.compile("".join(parts)), percents


def check_claim(claim: str, size: str, output: str) -> None:
    pattern, percents = claim_pattern(claim, size)
    matches = [m for line in output.splitlines() if (m := pattern.search(line))]
    assert matches, f"no line of the output matches the claim {claim!r}\n--- output:\n{output[-4000:]}"
    m = matches[-1]
    for claimed, got in zip(percents, m.groups()):
        if size == "full":
            assert got == claimed, f"claimed {claimed}%, printed {got}%: {m.group()}"
        else:
            assert abs(float(got) - float(claimed)) <= TOLERANCE_POINTS, \
                f"claimed {claimed}% (±{TOLERANCE_POINTS:g} at {size} size), printed {got}%: {m.group()}"


def check_against_card(script: str, output: str) -> None:
    """A classifying example without claims: its final line, for the images sent, at the card's accuracy."""
    model = re.search(r"(?:infer keras|infer_cifar)\b.*?(?:-m|--model|--modelPath)\s+(\S+)", script)
    if not model:
        return
    total = re.search(r"(?:-t|--total|--totalImages)\s+(\d+)", script)
    line = re.search(r"Inferenced (\d+) images .*?(?:([\d.]+)% correctly classified|accuracy n/a)", output)
    assert line, f"no 'Inferenced N images' line\n--- output:\n{output[-4000:]}"
    if total:
        assert line.group(1) == total.group(1), f"sent {total.group(1)} images: {line.group()}"
    card = (ROOT / model.group(1)).with_suffix(".json")
    if card.is_file() and line.group(2):
        expected = 100 * json.loads(card.read_text())["test_accuracy"]
        assert abs(float(line.group(2)) - expected) <= TOLERANCE_POINTS, \
            f"{model.group(1)}'s card says {expected:.2f}% on the test set; the example printed {line.group()}"


@pytest.mark.nc
@pytest.mark.parametrize("example,size", _cases())
def test_example_runs_and_prints_what_it_claims(example: Example, size: str, tmp_path: Path):
    script = prepare(example, size, tmp_path)
    rc, output = run_script(script, TIMEOUT_S[size])
    assert rc == 0, f"exit status {rc}\n{script}\n--- output:\n{output[-4000:]}"
    for claim in example.claims:
        check_claim(claim, size, output)
    if not example.claims:
        check_against_card(script, output)
    for plot in re.findall(r"--plot\s+(\S+)", script):
        assert Path(plot).is_file(), f"--plot wrote no {plot}"


# --------------------------------------------------------------------------- the tables stay true


def test_every_table_entry_still_applies():
    examples = readme_examples() + help_examples()
    texts = [c.strip() for e in examples for c in e.commands]
    for pattern, reason in SKIP + SLOW:
        assert any(re.search(pattern, t) for t in texts), f"no example matches {pattern!r} ({reason}): drop it"
    for pattern, _, why in SIZES:
        assert any(re.search(pattern, t) for t in texts), f"no example matches {pattern!r} ({why}): drop it"
    for name in FILES:
        assert any(name in t for t in texts), f"no example uses {name}: drop it from FILES"


def test_the_readme_keeps_its_netcat_pipeline_and_claims():
    examples = readme_examples()
    nc = [e for e in examples if any(c.lstrip().startswith("nc -") for c in e.commands)]
    assert nc and all(e.claims for e in nc), "the README's nc pipeline (with its claimed final line) is gone"
    assert any("-k" not in c.split("|")[0] for e in nc for c in e.commands if c.lstrip().startswith("nc -")), \
        "the nc listener must end on its own (nc -l, not nc -lk)"


def test_claims_are_read_as_documented():
    pattern, percents = claim_pattern("Inferenced 10000 images in … with 9147 or 91.5% correctly classified",
                                      "small")
    line = "Inferenced 300 images in 1.2 seconds or 250.0 images/second, with 279 or 93.0% correctly classified"
    m = pattern.search(line)
    assert m and percents == ["91.5"] and m.groups() == ("93.0",)
    assert not pattern.search(line.replace("300 images", "299 images"))
    full, _ = claim_pattern("Inferenced 10000 images in … with 9147 or 91.5% correctly classified", "full")
    assert not full.search(line)
    block = ["# title", "a | b &", "sleep 1; c", "wait", "# → out …", "", "d  # trailing comment", "e"]
    got = examples_in_block("X", 1, "bash", block)
    assert [e.commands for e in got] == [("a | b &", "sleep 1; c", "wait"), ("d  # trailing comment", "e")]
    assert got[0].claims == ("out …",)
    assert [e.commands for e in examples_in_block("X", 1, "bash", ["p  # one", "q  # two"])] == [("p  # one",),
                                                                                                  ("q  # two",)]
    assert map_ports("send -t 10000 --listen 10000 | nc -q1 127.0.0.1 10000", 5) == \
        "send -t 10000 --listen 5 | nc -q1 127.0.0.1 5"
