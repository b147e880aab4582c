"""What this CPU can do for inference: its flags, whether bf16 runs natively, and the edge gate's floor.

The edge runtimes' speed-ups depend on the instruction set: OpenVINO's bf16 path needs
AVX-512-BF16 or AMX-BF16 (without them it would emulate bf16, slower than fp32), and int8
gains most with VNNI.  The machines this suite runs on differ (Intel Xeons with AMX, AMD EPYCs
with AVX2 only), so a precision is refused, and a ratio gate's floor chosen, from the flags the
kernel reports in ``/proc/cpuinfo`` — never from the machine's name.  Every function takes the
flag set as an argument, so that tests can state a CPU instead of mocking one.
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path

PRECISIONS = ("fp32", "bf16", "int8")
#: Flags (Linux /proc/cpuinfo names) any one of which gives native bf16 matrix arithmetic.
BF16_FLAGS = ("avx512_bf16", "amx_bf16")
#: Flags that make int8 dot products fast (VNNI on AVX-512 or AVX2, AMX tiles).
INT8_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")
#: Edge gate floors (issue 14): best runtime ÷ TF fp32 on the same model, same run.
FLOOR_BF16_CPU, FLOOR_ELSEWHERE = 2.5, 1.3


@functools.lru_cache(maxsize=1)
def cpu_flags(cpuinfo: str | None = None) -> frozenset[str]:
    """The CPU's feature flags (first ``flags`` line of /proc/cpuinfo); empty where there is none."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return frozenset()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


@functools.lru_cache(maxsize=1)
def cpu_model() -> str:
    """``model name`` from /proc/cpuinfo (e.g. "AMD EPYC"), else the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                return value.strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def supports_bf16(flags: frozenset[str] | set[str]) -> bool:
    return any(flag in flags for flag in BF16_FLAGS)


def relevant_flags(flags: frozenset[str] | set[str]) -> list[str]:
    """The flags that matter to these decisions, as this CPU has them (recorded beside each gate)."""
    wanted = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile",
              "amx_bf16", "amx_int8")
    return [flag for flag in wanted if flag in flags]


def precision_refusal(precision: str, flags: frozenset[str] | set[str],
                      instead: tuple[str, ...] = ("fp32", "int8")) -> str | None:
    """Why ``precision`` cannot run on a CPU with ``flags`` (one line), or None when it can; ``instead`` are the
    precisions the caller's runtime offers in its place (named in the advice)."""
    if precision not in PRECISIONS:
        return f"unknown precision {precision!r}; known: {', '.join(PRECISIONS)}"
    if precision == "bf16" and not supports_bf16(flags):
        return (f"bf16 needs a CPU with native bf16 arithmetic (flag {' or '.join(BF16_FLAGS)} in /proc/cpuinfo); "
                f"this CPU ({cpu_model()}) has neither: use --precision {' or '.join(instead)}")
    return None


def gate_floor(flags: frozenset[str] | set[str]) -> tuple[float, str]:
    """``(floor, why)`` for "best edge runtime ÷ TF fp32": 2.5 where bf16 runs natively, 1.3 elsewhere."""
    if supports_bf16(flags):
        have = [flag for flag in BF16_FLAGS if flag in flags]
        return FLOOR_BF16_CPU, f"native bf16 ({', '.join(have)})"
    return FLOOR_ELSEWHERE, f"no native bf16 (none of {', '.join(BF16_FLAGS)})"
