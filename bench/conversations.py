"""Benchmark conversations: the bundled survey answered the way different respondents write.

Every respondent takes the same path through the survey (the same answers), but each writes them in one of several
ways (accents or none, capitals, words or numbers, emoji, filler), chosen by a generator seeded with the
respondent's number: replies repeat across respondents about as much as real ones do, not one text per question.
"""

from __future__ import annotations

import random

GREETINGS = ("hola", "Hola", "hola!", "Hola buenas", "buenas tardes", "HOLA", "ola", "Buenos días")
"""The first message, which starts the default survey."""

ANSWERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("consent", ("si claro", "Sí", "si", "SI", "sí acepto", "Si, claro", "ok si", "sii", "si 👍", "Sí!")),
    ("age_band", tuple(f"{age}{suffix}" for age in range(25, 35) for suffix in ("", " años", " anos", " Años"))),
    ("returned", ("1", "1)", "regrese", "Regresé", "soy retornado", "1.", "regresé de EU", "uno")),
    ("return_type", ("me deportaron 😔", "deportado", "Deportado", "me deportaron", "deportada", "3", "3.")),
    ("assisted", ("Sí", "si", "SI", "sí", "si me ayudaron", "Si!", "sí, algo", "1")),
    ("sex", ("mujer", "Mujer", "MUJER", "soy mujer", "1", "femenino", "mujer.")),
    ("state", ("nuevo leon", "Nuevo León", "NUEVO LEON", "nuevo león", "N.L.", "Nuevo Leon", "19", "nl")),
    ("income_covers", ("a veces", "A veces", "aveces", "2", "A VECES")),
    ("work", ("2.", "2", "por mi cuenta", "Por mi cuenta", "2)", "dos")),
    ("skills_used", ("no", "No", "NO", "nop", "no.", "no 😞", "2")),
    ("unfair_work", ("NO", "no", "No", "nunca", "no.", "Nunca", "2")),
    ("savings_credit", ("si", "Sí", "SI", "sí tengo", "1", "si.")),
    ("health_care", ("3", "3.", "no he necesitado", "No he necesitado", "3)", "tres")),
    ("children_school", ("algunos", "Algunos", "ALGUNOS", "algunos si", "2", "algunos.")),
    ("housing", ("sí!", "si", "Sí", "SI", "sí", "1", "si tengo")),
    ("id_documents", ("👍", "si", "Sí", "si ya", "1", "SI")),
    ("support_network", ("no", "No", "NO", "no.", "no tengo", "2")),
    ("accepted", ("mas o menos", "Más o menos", "más o menos", "MAS O MENOS", "2", "masomenos")),
    ("safe", ("si", "Sí", "SI", "si.", "sí", "1")),
    ("distress", ("seguido", "Seguido", "muy seguido", "SEGUIDO", "seguido 😔")),
    ("migrate_again", ("tal vez", "Tal vez", "talvez", "quizás", "quizas", "TAL VEZ", "puede ser")),
    ("community_need", ("1 y 5", "1, 5", "1 5", "1,5", "empleo y seguridad", "1 y 5.")),
)
"""Each question of the bundled survey in the order asked, with the ways this path's answer is written."""


def conversation(respondent: int) -> list[str]:
    """One respondent's messages: a greeting, then an answer to every question, in their own words."""
    pick = random.Random(respondent).choice
    return [pick(GREETINGS), *(pick(ways) for _, ways in ANSWERS)]
