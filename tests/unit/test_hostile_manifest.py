"""Hostile and careless manifest text: a clean error naming the key path and the fix, or a value kept exactly.

No case may end in anything but :class:`ManifestError` (no traceback), and nothing the manifest
accepts may be silently changed on the way to the job (a string that survives loading resolves to
itself). The database-side half (sql/guard parsed by the server, apply on the sandbox) is in
tests/integration/test_hostile_input.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cronkit.errors import ManifestError
from cronkit.manifest import parse_manifest

ENV = {"SUPABASE_URL": "https://example.supabase.co"}


def http_job(**changes: Any) -> dict[str, Any]:
    job = {"name": "a", "schedule": "*/5 * * * *", "url": "https://example.com/x",
           "headers": {"Authorization": "Bearer {secret:key}"}, **changes}
    return {k: v for k, v in job.items() if v is not None}


def load(*jobs: dict[str, Any], **top: Any) -> Any:
    return parse_manifest({"project": "p", **top, "jobs": list(jobs)}, Path("cronkit.toml"))


def refused(data_jobs: list[dict[str, Any]], *says: str, **top: Any) -> str:
    with pytest.raises(ManifestError) as caught:
        load(*data_jobs, **top)
    text = str(caught.value)
    assert "fix:" in text, text
    for expected in says:
        assert expected in text, text
    return text


CASES = [
    pytest.param([http_job(url="https://example.com/a\x00b")], ("jobs[0].url", "NUL"), {}, id="NUL in url"),
    pytest.param([http_job(headers={"x": "a\x00"})], ("jobs[0].headers.x", "NUL"), {}, id="NUL in a header"),
    pytest.param([http_job(params={"q": "a\x00"})], ("jobs[0].params.q", "NUL"), {}, id="NUL in params"),
    pytest.param([http_job(body={"k": ["a\x00"]})], ("jobs[0].body.k[0]", "NUL"), {}, id="NUL deep in the body"),
    pytest.param([{"name": "a", "schedule": "* * * * *", "sql": "select '\x00'"}], ("jobs[0].sql", "NUL"), {},
                 id="NUL in sql"),
    pytest.param([http_job()], ("project", "NUL"), {"project": "p\x00"}, id="NUL in project"),
    pytest.param([http_job(url="https://example.com/a b")], ("jobs[0].url", "space", "%20"), {}, id="space in url"),
    pytest.param([http_job(url="https://example.com/a\nb")], ("jobs[0].url", "line break"), {}, id="newline in url"),
    pytest.param([http_job(url="https://exämple.com/")], ("jobs[0].url", "non-ASCII", "xn--"), {}, id="non-ASCII url"),
    pytest.param([http_job(url="ftp://example.com/x")], ("jobs[0].url", "http:// or https://"), {}, id="ftp url"),
    pytest.param([http_job(url="example.com/x")], ("jobs[0].url", "http:// or https://"), {}, id="url without scheme"),
    pytest.param([http_job(url=None, function="a b")], ("jobs[0].function", "not an Edge Function name"), {},
                 id="function name with a space"),
    pytest.param([http_job(headers={"Authorization": "Bearer {secret:name with spaces}"})],
                 ("jobs[0].headers.Authorization", "'{secret:name with spaces}' is not a valid reference"), {},
                 id="secret reference with spaces"),
    pytest.param([http_job(headers={"Authorization": "Bearer {secret:key"})],
                 ("jobs[0].headers.Authorization", "is not a valid reference", "braces close"), {},
                 id="unclosed secret reference"),
    pytest.param([http_job(url="{env:SUPABASE URL}/x")], ("jobs[0].url", "is not a valid reference"), {},
                 id="env reference with a space"),
    pytest.param([http_job(headers={"x-a\r\nInjected": "v"})], ("not a valid HTTP header name",), {},
                 id="header name with CRLF"),
    pytest.param([http_job(headers={"x-a": "v\r\nInjected: yes"})], ("jobs[0].headers.x-a", "line break"), {},
                 id="header value with CRLF"),
    pytest.param([http_job(name="n" * 64)], ("jobs[0].name", "longer than 63 bytes"), {}, id="name over 63 bytes"),
    pytest.param([http_job(name="ä" * 32)], ("jobs[0].name", "longer than 63 bytes"), {},
                 id="name over 63 bytes in UTF-8"),
    pytest.param([http_job()], ("secrets.table", "not a plain lower-case SQL name"),
                 {"secrets": {"backend": "table", "table": "public.My Secrets"}}, id="secrets table with a space"),
    pytest.param([http_job()], ("secrets.table", "not a plain lower-case SQL name"),
                 {"secrets": {"backend": "table", "table": "public.\"x\""}}, id="secrets table with quotes"),
    pytest.param([http_job()], ("secrets.table", "not a plain lower-case SQL name"),
                 {"secrets": {"backend": "table", "table": "Secrets"}}, id="secrets table with capitals"),
    pytest.param([http_job()], ("secrets.key_column", "not a plain lower-case SQL name"),
                 {"secrets": {"backend": "table", "key_column": "k; drop table x"}}, id="key column with SQL"),
    pytest.param([http_job()], ("secrets.guc_prefix", "not a plain lower-case SQL name"),
                 {"secrets": {"backend": "guc", "guc_prefix": "app.settings"}}, id="guc prefix without the dot"),
]


@pytest.mark.parametrize(("jobs", "says", "top"), CASES)
def test_hostile_values_are_refused_with_the_key_path_and_the_fix(jobs: list[dict[str, Any]], says: tuple[str, ...],
                                                                 top: dict[str, Any]) -> None:
    refused(jobs, "cronkit.toml", *says, **top)


def test_what_is_allowed_stays_allowed() -> None:
    manifest = load(http_job(url="{secret:worker_url}", headers={"x-token": "{secret:a.b-c_1}", "x-tab": "a\tb"},
                             body={"quote": "it's \"q\" $$; --", "unicode": "héllo ✓"}, params={"q": "a&b=c"}))
    [spec] = manifest.resolve(None, ENV)
    assert spec.url == "{secret:worker_url}" and spec.headers["x-tab"] == "a\tb"
    assert spec.body == {"quote": "it's \"q\" $$; --", "unicode": "héllo ✓"} and spec.params == {"q": "a&b=c"}


FIELDS = {
    "body value": lambda v: http_job(body={"k": v}),
    "params value": lambda v: http_job(params={"q": v}),
    "header value": lambda v: http_job(headers={"x-v": v}),
    "url path": lambda v: http_job(url="https://example.com/" + v),
    "description": lambda v: http_job(description=v),
    "sql": lambda v: {"name": "a", "schedule": "*/5 * * * *", "sql": v},
    "guard": lambda v: http_job(guard=v),
    "name": lambda v: http_job(name=v),
}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(field=st.sampled_from(sorted(FIELDS)), value=st.text(min_size=1, max_size=40))
def test_any_text_in_any_field_is_a_clean_error_or_kept_exactly(field: str, value: str) -> None:
    job = FIELDS[field](value)
    try:
        manifest = load(job)
        [spec] = manifest.resolve(None, ENV)
    except ManifestError as error:
        assert "cronkit.toml: " in str(error) and "fix:" in str(error) or "missing" in str(error) or "expected" in str(error)
        return
    kept = {
        "body value": lambda: spec.body == {"k": value},
        "params value": lambda: spec.params == {"q": value},
        "header value": lambda: spec.headers["x-v"] == value,
        "url path": lambda: spec.url == "https://example.com/" + value,
        "description": lambda: spec.description == value,
        "sql": lambda: spec.sql == value,
        "guard": lambda: spec.guard == value,
        "name": lambda: spec.name == value,
    }[field]
    assert kept(), f"{field}: {value!r} was accepted but not kept"
    assert "\x00" not in value
