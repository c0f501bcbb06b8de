"""Bounding values for the hot tier: always visible, never silent."""

from xray_sdk.contract.bounds import bound_json, json_size, truncate_text


def test_short_text_is_untouched():
    assert truncate_text("hello", 10) == ("hello", False)


def test_long_text_is_cut_to_the_limit_with_a_marker():
    text, cut = truncate_text("x" * 5000, 200)
    assert cut
    assert len(text) <= 200
    assert text.endswith("chars]")
    assert "truncated" in text


def test_small_json_is_untouched():
    value = {"a": [1, 2, 3]}
    assert bound_json(value, 100) == (value, False)


def test_large_json_becomes_a_marked_preview_within_the_limit():
    value = {"items": list(range(10000))}
    bounded, cut = bound_json(value, 1024)
    assert cut
    assert bounded["_truncated"] is True
    assert bounded["_original_bytes"] == json_size(value)
    assert json_size(bounded) <= 1024
    assert bounded["preview"].startswith('{"items":[0,1,2')
