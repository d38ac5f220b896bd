"""The rate limiter benchmark's arguments and table (its timings are not asserted: they belong
to the machine, and the README reports them)."""

from __future__ import annotations

import pytest

from bench.ratelimit_cost import Micro, Run, parse_args, render


def test_arguments_default_to_two_bounded_pairs() -> None:
    args = parse_args([])
    assert (args.repeat, args.duration, args.warmup, args.calls) == (2, 15.0, 5.0, 20_000)
    assert parse_args(["--repeat", "3", "--calls", "100"]).calls == 100


@pytest.mark.parametrize("argv", [["--repeat", "0"], ["--calls", "0"], ["--duration", "0"]])
def test_arguments_out_of_range_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(argv)


def _run(limited: bool, rps: float, replica_ms: float, calls: int) -> Run:
    return Run(rps, 1_000, 0, 2.0, replica_ms, 8.0, limited=limited, script_calls=calls)


def test_table_has_both_settings_and_their_difference() -> None:
    runs = [
        _run(True, 300, 2.2, 1_000),
        _run(False, 330, 2.0, 0),
        _run(True, 300, 2.2, 1_000),
        _run(False, 330, 2.0, 0),
    ]
    micro = Micro(20_000, 120.0, 60.0, 90.0, 40.0, 8.5)
    table = render(runs, parse_args([]), 10_000, micro)
    rows = {line.split(" | ")[0].lstrip("| "): line for line in table.splitlines() if "|" in line}
    assert "| 2 | 300 | 300 / 300 | 2.200 | 2.000 | 8.000 | 1.100 | 1.00 | 0 |" in rows["on"]
    assert "| 2 | 330 | 330 / 330 | 2.000 | 2.000 | 8.000 | 1.000 | 0.00 | 0 |" in rows["off"]
    assert "| -9.1 % | - | +10.0 % | +0.0 % | +0.0 % | +10.0 % |" in rows["on vs off"]
    assert "120 µs per check" in table
    assert "8.5 µs of Redis's" in table
