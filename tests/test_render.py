"""What the terminal draws: a one-line chart of bad runs per bucket, and a value beside its
baseline's spread. Plain functions, no server."""

from xray_cli.render import bad_runs_chart, sparkline, spread


def test_a_sparkline_scales_to_the_largest_and_leaves_empty_buckets_blank():
    assert sparkline([0, 4, 8, None, 2]) == "▁▅█ ▃"
    assert sparkline([0, 0]) == "▁▁"


def test_the_bad_runs_chart_fills_the_buckets_that_had_no_runs():
    buckets = [
        {"start": "2026-12-01T00:00:00Z", "runs": 10, "bad": 0},
        {"start": "2026-12-01T03:00:00Z", "runs": 10, "bad": 7},
    ]
    assert bad_runs_chart(buckets, 3600) == "▕▁  █▏"
    assert bad_runs_chart([], 3600) == ""


def test_the_spread_marks_the_value_the_band_and_the_median_on_one_scale():
    drawn = spread(0.2, 0.6, 0.8, 1.0, width=9)
    assert drawn == "0.200 ●   ──┼── 1.000"  # 0.6 at 4, 0.8 at 6, 1.0 at 8 of 0..8
    assert spread(1.0, 1.0, 1.0, 1.0) is None  # nothing to draw a scale from
