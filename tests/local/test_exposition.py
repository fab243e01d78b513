"""The ``group`` label added to HAProxy's exposition text: exactly where the map says, nowhere
else, every other byte kept."""

from __future__ import annotations

import pytest

from klink.providers.local.exposition import add_group_labels, escape, parse_labels

GROUPS = {("hello-dev", "s0"): "hello-dev-v001", ("hello-dev", "s1"): "hello-dev-v002"}

TEXT = """\
# HELP haproxy_server_http_responses_total Total number of HTTP responses.
# TYPE haproxy_server_http_responses_total counter
haproxy_server_http_responses_total{proxy="hello-dev",server="s0",code="2xx"} 30
haproxy_server_http_responses_total{proxy="hello-dev",server="s1",code="5xx"} 3
haproxy_server_http_responses_total{proxy="hello-dev",server="s2",code="2xx"} 7
haproxy_server_http_responses_total{proxy="other",server="s0",code="2xx"} 9
# HELP haproxy_backend_http_responses_total Total number of HTTP responses.
# TYPE haproxy_backend_http_responses_total counter
haproxy_backend_http_responses_total{proxy="hello-dev",code="2xx"} 40

haproxy_process_nbthread 2
"""


def test_servers_in_the_map_get_their_group_and_nothing_else_changes() -> None:
    out = add_group_labels(TEXT, GROUPS)
    lines = out.split("\n")
    assert lines[2] == (
        'haproxy_server_http_responses_total{proxy="hello-dev",server="s0",code="2xx",'
        'group="hello-dev-v001"} 30'
    )
    assert lines[3] == (
        'haproxy_server_http_responses_total{proxy="hello-dev",server="s1",code="5xx",'
        'group="hello-dev-v002"} 3'
    )
    # Every other line as it was: comments, a free slot (s2), the same slot name on another
    # backend, backend and process series, the blank line and the final newline.
    original = TEXT.split("\n")
    assert len(lines) == len(original)
    assert [a for i, a in enumerate(lines) if i not in (2, 3)] == [
        b for i, b in enumerate(original) if i not in (2, 3)
    ]
    assert out.endswith("\n")


def test_an_empty_map_changes_nothing() -> None:
    assert add_group_labels(TEXT, {}) == TEXT
    assert add_group_labels(TEXT, {("nope", "s9"): "hello-dev-v001"}) == TEXT


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        # Values holding the format's escapes and its own punctuation are read and written back.
        (
            'haproxy_server_x{proxy="hello-dev",note="a\\"b,c}d\\\\",server="s0"} 1 1700000000',
            'haproxy_server_x{proxy="hello-dev",note="a\\"b,c}d\\\\",server="s0",'
            'group="hello-dev-v001"} 1 1700000000',
        ),
        # Blanks between tokens and a trailing comma are allowed by the format.
        (
            'haproxy_server_x{ proxy = "hello-dev" , server="s1", } 2',
            'haproxy_server_x{proxy="hello-dev",server="s1",group="hello-dev-v002"} 2',
        ),
        # A group label already there is replaced, never doubled.
        (
            'haproxy_server_x{group="stale",proxy="hello-dev",server="s0"} 3',
            'haproxy_server_x{proxy="hello-dev",server="s0",group="hello-dev-v001"} 3',
        ),
        # No labels, or labels that do not parse: left alone.
        ("haproxy_server_x 4", "haproxy_server_x 4"),
        ('haproxy_server_x{proxy="hello-dev",server="s0" 5', None),
        ('haproxy_server_x{proxy="hello-dev",server=s0} 5', None),
        ('haproxy_server_x{proxy="hello-dev",server="s0} 5', None),
        # Not a server series: never touched even if it names a server.
        ('haproxy_backend_x{proxy="hello-dev",server="s0"} 6', None),
    ],
)
def test_labels_are_parsed_with_the_formats_escapes(line: str, expected: str | None) -> None:
    assert add_group_labels(line, GROUPS) == (line if expected is None else expected)


def test_a_value_is_unescaped_on_reading_and_escaped_on_writing() -> None:
    line = 'm{a="x\\ny\\"z\\\\",b="",c="\\q"}'
    parsed = parse_labels(line, line.index("{"))
    assert parsed is not None
    pairs, end = parsed
    assert pairs == [("a", 'x\ny"z\\'), ("b", ""), ("c", "\\q")]
    assert end == len(line)
    assert escape('x\ny"z\\') == 'x\\ny\\"z\\\\'
    weird = {("p\\q", 'say "hi"'): 'g"\n'}
    out = add_group_labels('haproxy_server_y{proxy="p\\\\q",server="say \\"hi\\""} 1', weird)
    assert out == 'haproxy_server_y{proxy="p\\\\q",server="say \\"hi\\"",group="g\\"\\n"} 1'
