"""The JSON report shows no character a terminal would act on, and means the same.

``json.dumps`` escapes C0 controls only: a namespace or exception reason holding a C1 control
(``\\x9b`` is a CSI on many terminals) or a bidi override (``\\u202e``) reached an auditor's
terminal raw through ``audit report --format json``, where it could rearrange the figures
around it. Every character Python does not call printable is now written as its JSON escape;
the document reads back the same.
"""

from __future__ import annotations

import json

from affidavit.audit.render import render_json

ODD = "shop\u202egnp.exe\x9b31m\x85\U000e0041\ud800end"


def test_unprintable_characters_are_escaped_and_read_back_the_same() -> None:
    report = {"byNamespace": {ODD: {"denied": 1}}, "reason": ODD, "plain": "café ünïcode"}
    text = render_json(report)
    assert all(line.isprintable() for line in text.split("\n"))
    assert "\\u202e" in text and "\\u009b" in text and "\\u0085" in text
    assert "\\udb40\\udc41" in text  # past the BMP: a surrogate pair, as JSON writes it
    assert "\\ud800" in text  # a lone surrogate cannot even be encoded raw
    assert "café ünïcode" in text  # printable text stays as it is
    assert json.loads(text) == report
    text.encode()  # no UnicodeEncodeError on the way to a file


def test_a_printable_report_is_unchanged() -> None:
    report = {"b": ["x", "ü"], "a": 1}
    assert (
        render_json(report)
        == json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    )
