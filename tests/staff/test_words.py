"""The console's words: both languages say the same things, and every word a template asks for exists."""

from __future__ import annotations

import re
from pathlib import Path

import service.staff
from service.staff.words import WORDS

TEMPLATES = Path(service.staff.__file__).parent / "templates" / "staff"
ASKED = re.compile(r"words\.([a-z_]+)|words\[['\"]([a-z_]+)['\"]\]")
BUILT = re.compile(r"words\[['\"]([a-z]+_)['\"] \+")
"""Keys built from a prefix and a status (words['c_' + status]): the prefix must name some words."""


def test_spanish_and_english_have_the_same_words():
    assert set(WORDS["es"]) == set(WORDS["en"])
    assert all(text.strip() for language in WORDS.values() for text in language.values())


def test_every_word_a_template_asks_for_exists():
    for template in TEMPLATES.glob("*.html"):
        source = template.read_text(encoding="utf-8")
        for dotted, indexed in ASKED.findall(source):
            name = dotted or indexed
            if name in ("get", "format", "items"):
                continue
            assert name in WORDS["es"], f"{template.name}: words.{name}"
        for prefix in BUILT.findall(source):
            assert any(key.startswith(prefix) for key in WORDS["es"]), f"{template.name}: {prefix}"
