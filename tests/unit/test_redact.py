"""The one scrubber: what it masks in text shown to people, and what it leaves alone."""

from __future__ import annotations

import pytest

from cronkit.redact import Scrubber, mask, scrub
from tests.helpers import fake_jwt, fake_sb_secret

JWT = fake_jwt()


@pytest.mark.parametrize("shown", [
    JWT,
    f"Authorization: Bearer {JWT}",
    # PostgreSQL quotes the statement around an error position and cuts it mid-key
    f"LINE 1: select ('Bearer {JWT[:52]}...",
    f"LINE 1: select ('Bearer {JWT.split('.')[0]}.",
    fake_sb_secret("abcdefgh12345678"),
    f"apikey={fake_sb_secret('abc')[:14]}",
])
def test_anything_shaped_like_a_key_is_masked_whole_or_cut_short(shown: str) -> None:
    cleaned = scrub(shown)
    assert "eyJ" not in cleaned.replace("<secret", "") and "sb_secret_" not in cleaned
    assert "<secret len=" in cleaned


def test_a_known_value_becomes_its_name_and_the_longest_value_wins() -> None:
    clean = Scrubber.for_values({"short": "abcdef-123", "long": "abcdef-123-and-more"})
    assert clean.text("x abcdef-123-and-more y abcdef-123") == "x <secret long> y <secret short>"


def test_values_too_short_to_scrub_safely_are_left_in_text() -> None:
    assert Scrubber.for_values({"pin": "1234"}).text("run 1234 of 12345") == "run 1234 of 12345"


@pytest.mark.parametrize("text", ["jobs.eyJ", "select 1", "secret sb_secret_ is a prefix", "token: abc"])
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert scrub(text) == text


def test_nested_data_is_scrubbed_keys_and_values() -> None:
    data = {"command": f"Bearer {JWT}", "list": [JWT], 3: (JWT,)}
    assert scrub(data) == {"command": f"Bearer {mask(JWT)}", "list": [mask(JWT)], 3: (mask(JWT),)}
