"""What a benchmark returns (`Figure`s, built by the threshold helpers) and how it registers
(`@benchmark`, run in the order defined); shared by `run.py` and the benchmark modules."""

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    """One line of the report. `threshold` guards against regressions (`ok` is whether it
    held); `target`, when there is one, is the goal the figure is measured against (an issue's
    figure), reported as met or not without failing the run."""

    name: str
    value: str
    threshold: str
    ok: bool
    target: str = ""


def _target(target: float | None, met: bool, sign: str) -> str:
    if target is None:
        return ""
    return f"{sign} {target:g}x {'met' if met else 'NOT met'}"


def ratio_at_most(name: str, value: float, limit: float, target: float | None = None) -> Figure:
    met = target is not None and value <= target
    return Figure(
        name, f"{value:.2f}x", f"<= {limit:g}x", value <= limit, _target(target, met, "<=")
    )


def ratio_at_least(name: str, value: float, limit: float, target: float | None = None) -> Figure:
    met = target is not None and value >= target
    return Figure(
        name, f"{value:.3f}x", f">= {limit:g}x", value >= limit, _target(target, met, ">=")
    )


def all_equal(name: str, counts: list[int], scales) -> Figure:
    label = "/".join(str(scale) for scale in scales)
    return Figure(
        name,
        " / ".join(str(count) for count in counts),
        f"equal at {label}",
        len(set(counts)) == 1,
    )


BENCHMARKS: list[Callable[[], list[Figure]]] = []


def benchmark(function: Callable[[], list[Figure]]) -> Callable[[], list[Figure]]:
    BENCHMARKS.append(function)
    return function


def timed(function) -> tuple[float, object]:
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def note(message: str) -> None:
    """The absolute figures behind a ratio, on stderr: for reading, not for comparing."""
    print(f"    {message}", file=sys.stderr)


def check(condition: bool, message: str) -> None:
    if not condition:
        raise RuntimeError(message)
