"""Table-driven tests of the answer parsers with messy real-world replies in Spanish and English."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from surveys.definition import QUESTION_TYPES, Choice, Question, Region
from surveys.parsers import (
    PARSERS,
    REASONS,
    Accepted,
    Rejected,
    Unsure,
    parse_answer,
    parse_choice,
    parse_date,
    parse_decimal,
    parse_integer,
    parse_multi,
    parse_region,
    parse_text,
    parse_yes_no,
)
from surveys.regions import MEXICO_STATES, REGION_SETS

TODAY = date(2024, 6, 10)

# ----- Question fixtures ----------------------------------------------------------------------------------

CONSENT = Question(
    "consent",
    "yes_no",
    {"es": "¿Acepta participar?", "en": "Do you agree to take part?"},
    choices=(Choice("yes", {"es": "Sí", "en": "Yes"}), Choice("no", {"es": "No", "en": "No"})),
)
YES_NO_BARE = Question("housing", "yes_no", {"es": "¿Tiene vivienda?"})
REASON = Question(
    "reason",
    "choice",
    {"es": "¿Por qué regresó?", "en": "Why did you come back?"},
    choices=(
        Choice("work", {"es": "Trabajo", "en": "Work"}, {"es": ("chamba", "empleo")}),
        Choice("family", {"es": "Reunirme con mi familia", "en": "To be with my family"}),
        Choice("deported", {"es": "Me deportaron", "en": "I was deported"}, {"es": ("deportado", "migra")}),
        Choice("own_decision", {"es": "Por decisión propia", "en": "My own decision"}),
        Choice("other", {"es": "Otra razón", "en": "Other reason"}, {"es": ("otro", "otra")}),
    ),
)
FREQUENCY = Question(
    "distress",
    "choice",
    {"es": "¿Con qué frecuencia?"},
    choices=(
        Choice("no", {"es": "No", "en": "No"}),
        Choice("never", {"es": "No, nunca", "en": "No, never"}),
        Choice("sometimes", {"es": "A veces", "en": "Sometimes"}, {"es": ("no se",)}),
        Choice("often", {"es": "Seguido", "en": "Often"}, {"es": ("siempre", "mucho")}),
    ),
)
CLASH = Question(
    "clash",
    "choice",
    {"es": "?"},
    choices=(
        Choice("a", {"es": "Casa"}, {"es": ("hogar",)}),
        Choice("b", {"es": "Departamento"}, {"es": ("hogar",)}),
    ),
)
WORK = Question(
    "work",
    "choice",
    {"es": "¿Cuál es su situación de trabajo?"},
    choices=(
        Choice("employed", {"es": "Tengo empleo"}, {"es": ("trabajo",)}),
        Choice("own_account", {"es": "Trabajo por mi cuenta"}),
        Choice("looking", {"es": "Busco trabajo"}, {"es": ("no tengo trabajo",)}),
    ),
)
AGE_BAND = Question(
    "age_band",
    "choice",
    {"es": "¿Cuántos años tiene?"},
    choices=(
        Choice("18-24", {"es": "18 a 24", "en": "18 to 24"}, range=(18, 24)),
        Choice("25-34", {"es": "25 a 34", "en": "25 to 34"}, range=(25, 34)),
        Choice("35-44", {"es": "35 a 44", "en": "35 to 44"}, range=(35, 44)),
        Choice("45-59", {"es": "45 a 59", "en": "45 to 59"}, range=(45, 59)),
        Choice("60+", {"es": "60 o más", "en": "60 or more"}, range=(60, 120)),
    ),
)
OVERLAP = Question(
    "overlap",
    "choice",
    {"es": "?"},
    choices=(Choice("low", {"es": "Poco"}, range=(10, 20)), Choice("mid", {"es": "Medio"}, range=(20, 30))),
)
NEEDS = Question(
    "needs",
    "multi",
    {"es": "¿Qué apoyos necesita?", "en": "What support do you need?"},
    choices=(
        Choice("money", {"es": "Dinero", "en": "Money"}, {"es": ("lana", "efectivo")}),
        Choice("jobs", {"es": "Trabajo", "en": "Jobs"}, {"es": ("empleo", "chamba")}),
        Choice("health", {"es": "Salud y bienestar", "en": "Health"}, {"es": ("doctor", "clinica")}),
        Choice("housing", {"es": "Vivienda", "en": "Housing"}, {"es": ("casa",)}),
        Choice("schools", {"es": "Escuelas", "en": "Schools"}),
        Choice("none", {"es": "Ninguna", "en": "None"}, {"es": ("nada", "ninguno")}, exclusive=True),
    ),
)
AGE = Question("age", "integer", {"es": "¿Cuántos años tiene?"}, min=0, max=120)
CHILDREN = Question("children", "integer", {"es": "¿Cuántos hijos?"})
INCOME = Question("income", "decimal", {"es": "¿Cuánto gana?"}, min=0, max=1_000_000)
HOURS = Question("hours", "decimal", {"es": "¿Cuántas horas?"}, min=1, max=24)
COMMENT = Question("comment", "text", {"es": "Comentarios"}, max_length=160)
STORY = Question("story", "text", {"es": "Cuéntenos"})
RETURN_DATE = Question("return_date", "date", {"es": "¿Cuándo regresó?"})
STATE = Question("state", "region", {"es": "¿En qué estado vive?"}, regions=MEXICO_STATES)
STATE_DEFAULT = Question("state2", "region", {"es": "¿En qué estado vive?"})
ZONES = Question(
    "zone",
    "region",
    {"es": "¿Zona?"},
    regions=(Region("N", "Norte", ("NTE",), ("frontera",)), Region("S", "Sur", (), ("sureste",))),
)

RETURNED = Question(
    "returned",
    "choice",
    {"es": "¿Ha vivido en otro país?", "en": "Have you lived in another country?"},
    choices=(
        Choice("returnee", {"es": "Sí, y regresé", "en": "Yes, and came back"}, {"es": ("regrese",)}, means="yes"),
        Choice("community", {"es": "No, nunca me fui", "en": "No, I never left"}, {"es": ("nunca",)}, means="no"),
    ),
)
WORK_STATUS = Question(
    "work",
    "choice",
    {"es": "¿Tiene trabajo?", "en": "Do you have work?"},
    choices=(
        Choice("employed", {"es": "Tengo empleo", "en": "I have a job"}, {"es": ("trabajo",)}, means="yes"),
        Choice("own_account", {"es": "Trabajo por mi cuenta", "en": "I work for myself"}, means="yes"),
        Choice("looking", {"es": "Busco trabajo", "en": "I am looking for work"}, means="no"),
        Choice("not_looking", {"es": "No busco trabajo", "en": "I am not looking for work"}, means="no"),
    ),
)
SAFE = Question(
    "safe",
    "choice",
    {"es": "¿Se siente seguro(a) donde vive?"},
    choices=(
        Choice("yes", {"es": "Sí", "en": "Yes"}, {"es": ("seguro",)}),
        Choice("partly", {"es": "Más o menos", "en": "Somewhat"}, {"es": ("a veces",)}),
        Choice("no", {"es": "No", "en": "No"}, {"es": ("inseguro",)}),
    ),
)
PLANS = Question(
    "plans",
    "choice",
    {"es": "¿Piensa migrar otra vez?"},
    choices=(
        Choice("yes", {"es": "Sí", "en": "Yes"}),
        Choice("no", {"es": "No", "en": "No"}),
        Choice("dont_know", {"es": "Todavía no lo decido", "en": "Undecided"}, means="dont_know"),
    ),
)
DONT_KNOW_LABEL = Question(
    "trust",
    "choice",
    {"es": "¿Confía en la policía?"},
    choices=(
        Choice("yes", {"es": "Sí", "en": "Yes"}),
        Choice("no", {"es": "No", "en": "No"}),
        Choice("dk", {"es": "No sé", "en": "Don't know"}),
    ),
)
SEX = Question(
    "sex",
    "choice",
    {"es": "¿Usted es mujer u hombre?"},
    choices=(
        Choice("female", {"es": "Mujer", "en": "Woman"}),
        Choice("male", {"es": "Hombre", "en": "Man"}),
        Choice("other", {"es": "Otro o prefiero no decir", "en": "Other or prefer not to say"}),
    ),
)

HUGE = "sí " * 100_000
CONTROL = "\x00\x01s\x07í\u200b\ufeff\x7f"


def ok(value: Any) -> Accepted:
    return Accepted(value)


def no(reason: str, **detail: Any) -> Rejected:
    return Rejected(reason, detail)


# ----- Cases: (label, question, text, language, expected) -------------------------------------------------
# A Rejected with an empty detail only checks the reason; a non-empty detail must match too.

YES_NO_CASES = [
    ("si-accent", CONSENT, "Sí", "es", ok("yes")),
    ("si-plain", CONSENT, "si", "es", ok("yes")),
    ("si-claro", CONSENT, "si claro", "es", ok("yes")),
    ("si-shouting", CONSENT, "SI!!!", "es", ok("yes")),
    ("si-elongated", CONSENT, "siiiii", "es", ok("yes")),
    ("si-double", CONSENT, "sii", "es", ok("yes")),
    ("si-control-chars", CONSENT, CONTROL, "es", ok("yes")),
    ("yes-english", CONSENT, "Yes!", "en", ok("yes")),
    ("yes-english-to-es", CONSENT, "yes", "es", ok("yes")),
    ("yeah", CONSENT, "yeah sure", "en", ok("yes")),
    ("y-letter", CONSENT, "y", "en", ok("yes")),
    ("s-letter", CONSENT, "S", "es", ok("yes")),
    ("ok", CONSENT, "ok", "es", ok("yes")),
    ("okay-dots", CONSENT, "okay...", "en", ok("yes")),
    ("vale", CONSENT, "vale", "es", ok("yes")),
    ("sale", CONSENT, "Sale pues", "es", ok("yes")),
    ("simon", CONSENT, "simón", "es", ok("yes")),
    ("sip", CONSENT, "sip", "es", ok("yes")),
    ("de-acuerdo", CONSENT, "de acuerdo", "es", ok("yes")),
    ("acepto", CONSENT, "Acepto", "es", ok("yes")),
    ("por-supuesto", CONSENT, "por supuesto!", "es", ok("yes")),
    ("correcto", CONSENT, "correcto", "es", ok("yes")),
    ("afirmativo", CONSENT, "afirmativo", "es", ok("yes")),
    ("como-no", CONSENT, "¡cómo no!", "es", ok("yes")),
    ("claro-que-si", CONSENT, "claro que sí", "es", ok("yes")),
    ("thumbs-up", CONSENT, "👍", "es", ok("yes")),
    ("thumbs-up-skin-tone", CONSENT, "👍🏽", "es", ok("yes")),
    ("check-mark", CONSENT, "✅", "es", ok("yes")),
    ("heavy-check-vs16", CONSENT, "✔️", "es", ok("yes")),
    ("ok-and-emoji", CONSENT, "ok 👍", "es", ok("yes")),
    ("si-with-smiley", CONSENT, "si 😊😊", "es", ok("yes")),
    ("number-1", CONSENT, "1", "es", ok("yes")),
    ("typo-claor", CONSENT, "claor", "es", ok("yes")),
    ("no", CONSENT, "no", "es", ok("no")),
    ("no-gracias", CONSENT, "no gracias", "es", ok("no")),
    ("no-gracias-punct", CONSENT, "No, gracias.", "es", ok("no")),
    ("nop", CONSENT, "nop", "es", ok("no")),
    ("nope", CONSENT, "Nope", "en", ok("no")),
    ("nel", CONSENT, "nel", "es", ok("no")),
    ("nunca", CONSENT, "nunca", "es", ok("no")),
    ("para-nada", CONSENT, "para nada", "es", ok("no")),
    ("no-acepto", CONSENT, "no acepto", "es", ok("no")),
    ("no-estoy-de-acuerdo", CONSENT, "no estoy de acuerdo", "es", ok("no")),
    ("negativo", CONSENT, "negativo", "es", ok("no")),
    ("claro-que-no", CONSENT, "claro que no", "es", ok("no")),
    ("n-letter", CONSENT, "n", "es", ok("no")),
    ("no-thanks", CONSENT, "no thanks", "en", ok("no")),
    ("nooo", CONSENT, "NOOOO", "es", ok("no")),
    ("thumbs-down", CONSENT, "👎", "es", ok("no")),
    ("cross-mark", CONSENT, "❌", "es", ok("no")),
    ("number-2", CONSENT, "2", "es", ok("no")),
    ("bare-si", YES_NO_BARE, "si", "es", ok("yes")),
    ("bare-no", YES_NO_BARE, "NO", "es", ok("no")),
    ("bare-2", YES_NO_BARE, "2", "es", ok("no")),
    ("bare-thumbs", YES_NO_BARE, "👍", "en", ok("yes")),
    ("mixed-si-no", CONSENT, "si no", "es", no("ambiguous")),
    ("mixed-emoji", CONSENT, "👍👎", "es", no("ambiguous")),
    ("mixed-yes-no-en", CONSENT, "yes no", "en", no("ambiguous")),
    ("no-se", CONSENT, "no sé", "es", no("unsure", doubt="dont_know")),
    ("nose", CONSENT, "nose", "es", no("unsure")),
    ("si-no-hay-problema", CONSENT, "Sí, no hay problema", "es", no("ambiguous")),  # a bare question: 'no' too
    ("no-problem-bare", YES_NO_BARE, "no problem", "en", no("not_understood")),
    ("no-hay-problema-bare", YES_NO_BARE, "no hay problema", "es", no("not_understood")),
    ("no-pasa-nada-bare", YES_NO_BARE, "no pasa nada", "es", no("not_understood")),
    ("si-tuviera-bare", YES_NO_BARE, "si tuviera dinero", "es", no("not_understood")),
    ("si-pero-bare", YES_NO_BARE, "sí, pero rentada", "es", no("not_understood")),
    ("pues-este-si-bare", YES_NO_BARE, "pues este... sí", "es", ok("yes")),
    ("si-tengo-bare", YES_NO_BARE, "si tengo", "es", ok("yes")),
    ("no-tengo-bare", YES_NO_BARE, "no tengo", "es", ok("no")),
    ("maybe", CONSENT, "maybe", "en", no("unsure", doubt="unsure")),
    ("number-3", CONSENT, "3", "es", no("not_understood")),
    ("gibberish", CONSENT, "asdfgh", "es", no("not_understood")),
    ("only-punct", CONSENT, "!!!???", "es", no("unsure", doubt="confused")),
    ("only-other-emoji", CONSENT, "😀", "es", no("not_understood")),
    ("empty", CONSENT, "", "es", no("empty")),
    ("spaces", CONSENT, "   \n\t ", "es", no("empty")),
    ("control-only", CONSENT, "\x00\x07\x1b", "es", no("empty")),
    ("huge", CONSENT, HUGE, "es", no("not_understood")),
]

CHOICE_CASES = [
    ("number", REASON, "2", "es", ok("family")),
    ("number-dot", REASON, "2.", "es", ok("family")),
    ("number-paren", REASON, "2)", "es", ok("family")),
    ("number-hash", REASON, "#2", "es", ok("family")),
    ("opcion-2", REASON, "opción 2", "es", ok("family")),
    ("la-2", REASON, "la 2", "es", ok("family")),
    ("la-numero-2", REASON, "la número 2", "es", ok("family")),
    ("option-2-en", REASON, "option 2", "en", ok("family")),
    ("word-dos", REASON, "dos", "es", ok("family")),
    ("word-two", REASON, "two", "en", ok("family")),
    ("word-two-in-es", REASON, "two", "es", ok("family")),
    ("ordinal-segunda", REASON, "la segunda", "es", ok("family")),
    ("ordinal-second", REASON, "the second one", "en", ok("family")),
    ("ordinal-2da", REASON, "2da", "es", ok("family")),
    ("ordinal-tercera", REASON, "la tercera opción", "es", ok("deported")),
    ("creo-que-la-3", REASON, "creo que la 3", "es", ok("deported")),
    ("number-in-sentence", REASON, "pues yo diria que 5", "es", ok("other")),
    ("label", REASON, "Trabajo", "es", ok("work")),
    ("label-upper", REASON, "TRABAJO!!", "es", ok("work")),
    ("label-english-while-es", REASON, "work", "es", ok("work")),
    ("label-spanish-while-en", REASON, "me deportaron", "en", ok("deported")),
    ("label-with-filler", REASON, "pues por decisión propia", "es", ok("own_decision")),
    ("label-no-accent", REASON, "por decision propia", "es", ok("own_decision")),
    ("label-partial", REASON, "decision propia", "es", ok("own_decision")),
    ("label-keyword", REASON, "por mi familia", "es", ok("family")),
    ("synonym", REASON, "chamba", "es", ok("work")),
    ("synonym-in-sentence", REASON, "me agarró la migra", "es", ok("deported")),
    ("value", REASON, "own_decision", "es", ok("own_decision")),
    ("emoji-noise", REASON, "🙏 trabajo 💪", "es", ok("work")),
    ("typo", REASON, "tarbajo", "es", ok("work")),
    ("typo-long", REASON, "me deportarn", "es", ok("deported")),
    ("typo-keyword", REASON, "fmailia", "es", ok("family")),
    ("two-labels", REASON, "trabajo y familia", "es", no("ambiguous")),
    ("number-and-other-label", REASON, "2 trabajo", "es", no("ambiguous")),
    ("number-and-same-label", REASON, "1 trabajo", "es", ok("work")),
    ("two-numbers", REASON, "1,3", "es", no("ambiguous")),
    ("number-too-big", REASON, "6", "es", no("not_understood", options=5)),
    ("number-zero", REASON, "0", "es", no("not_understood")),
    ("dont-know", REASON, "no sé", "es", no("unsure", doubt="dont_know")),
    ("nonsense", REASON, "hola buenas tardes", "es", no("not_understood")),
    ("empty", REASON, "", "es", no("empty")),
    ("huge", REASON, "trabajo " * 50_000, "es", no("not_understood")),
    ("longest-no", FREQUENCY, "No", "es", ok("no")),
    ("longest-no-nunca", FREQUENCY, "no, nunca", "es", ok("never")),
    ("longest-no-never-en", FREQUENCY, "No never", "en", ok("never")),
    ("longest-synonym-beats-dont-know", FREQUENCY, "no se", "es", ok("sometimes")),
    ("longest-in-sentence", FREQUENCY, "pues no, nunca me ha pasado", "es", ok("never")),
    ("synonym-siempre", FREQUENCY, "casi siempre", "es", ok("often")),
    ("same-synonym-two-choices", CLASH, "hogar", "es", no("ambiguous")),
    ("nested-phrase", WORK, "no tengo trabajo", "es", ok("looking")),
    ("overlapping-phrases-longest", WORK, "busco trabajo por mi cuenta", "es", ok("own_account")),
    ("disjoint-phrases", WORK, "tengo empleo, busco trabajo", "es", no("ambiguous")),
    ("range-plain", AGE_BAND, "25", "es", ok("25-34")),
    ("range-anos", AGE_BAND, "25 años", "es", ok("25-34")),
    ("range-tengo", AGE_BAND, "tengo 25 años", "es", ok("25-34")),
    ("range-words", AGE_BAND, "cuarenta y cinco", "es", ok("45-59")),
    ("range-english", AGE_BAND, "I am 61 years old", "en", ok("60+")),
    ("range-index-wins", AGE_BAND, "2", "es", ok("25-34")),
    ("range-unit-not-index", AGE_BAND, "5 años", "es", no("not_understood")),
    ("range-label", AGE_BAND, "18 a 24", "es", ok("18-24")),
    ("range-label-in-sentence", AGE_BAND, "de 25 a 34", "es", ok("25-34")),
    ("range-label-mas", AGE_BAND, "60 o más", "es", ok("60+")),
    ("range-out", AGE_BAND, "150", "es", no("not_understood")),
    ("range-overlap", OVERLAP, "20", "es", no("ambiguous")),
    ("range-overlap-unique", OVERLAP, "15", "es", ok("low")),
]

MULTI_CASES = [
    ("comma", NEEDS, "1,3", "es", ok(["money", "health"])),
    ("comma-space", NEEDS, "1, 3", "es", ok(["money", "health"])),
    ("y", NEEDS, "1 y 3", "es", ok(["money", "health"])),
    ("space", NEEDS, "1 3", "es", ok(["money", "health"])),
    ("and", NEEDS, "1 and 3", "en", ok(["money", "health"])),
    ("e", NEEDS, "1 e 3", "es", ok(["money", "health"])),
    ("comma-and-y", NEEDS, "1, 3 y 5", "es", ok(["money", "health", "schools"])),
    ("slash", NEEDS, "1/4", "es", ok(["money", "housing"])),
    ("ampersand", NEEDS, "2&3", "es", ok(["jobs", "health"])),
    ("dots", NEEDS, "1.2.", "es", ok(["money", "jobs"])),
    ("order-and-dedupe", NEEDS, "4, 1, 4", "es", ok(["money", "housing"])),
    ("single", NEEDS, "2", "es", ok(["jobs"])),
    ("words", NEEDS, "uno y tres", "es", ok(["money", "health"])),
    ("la-1-y-la-2", NEEDS, "la 1 y la 2", "es", ok(["money", "jobs"])),
    ("labels", NEEDS, "dinero, vivienda", "es", ok(["money", "housing"])),
    ("labels-y", NEEDS, "trabajo y casa", "es", ok(["jobs", "housing"])),
    ("label-containing-y", NEEDS, "salud y bienestar", "es", ok(["health"])),
    ("labels-and-label-with-y", NEEDS, "dinero, salud y bienestar", "es", ok(["money", "health"])),
    ("labels-english", NEEDS, "money and housing", "en", ok(["money", "housing"])),
    ("labels-mixed-languages", NEEDS, "money y trabajo", "es", ok(["money", "jobs"])),
    ("label-and-number", NEEDS, "dinero y 5", "es", ok(["money", "schools"])),
    ("label-typo", NEEDS, "dinero y viviendaa", "es", ok(["money", "housing"])),
    ("label-typo-2", NEEDS, "vivienad", "es", ok(["housing"])),
    ("filler", NEEDS, "pues creo que 1 y 2", "es", ok(["money", "jobs"])),
    ("emoji-noise", NEEDS, "💰 dinero 🏠 casa", "es", ok(["money", "housing"])),
    ("exclusive-alone", NEEDS, "ninguna", "es", ok(["none"])),
    ("exclusive-number", NEEDS, "6", "es", ok(["none"])),
    ("exclusive-combined", NEEDS, "1 y 6", "es", no("exclusive", exclusive="none")),
    ("exclusive-combined-label", NEEDS, "dinero, nada", "es", no("exclusive")),
    ("out-of-range", NEEDS, "1 y 9", "es", no("not_understood", options=6)),
    ("glued-digits", NEEDS, "13", "es", no("not_understood")),
    ("zero", NEEDS, "0", "es", no("not_understood")),
    ("nothing", NEEDS, "hola", "es", no("not_understood")),
    ("dont-know", NEEDS, "no se", "es", no("unsure")),
    ("empty", NEEDS, "", "es", no("empty")),
    ("huge", NEEDS, "1, " * 20_000, "es", no("not_understood")),
]

INTEGER_CASES = [
    ("plain", AGE, "25", "es", ok(25)),
    ("anos", AGE, "25 años", "es", ok(25)),
    ("tengo", AGE, "tengo 25", "es", ok(25)),
    ("sentence-en", AGE, "I'm 32 years old", "en", ok(32)),
    ("veinticinco", AGE, "veinticinco", "es", ok(25)),
    ("veintiun", AGE, "veintiún años", "es", ok(21)),
    ("twenty-five", AGE, "twenty five", "en", ok(25)),
    ("twenty-five-hyphen", AGE, "twenty-five", "en", ok(25)),
    ("treinta-y-dos", AGE, "treinta y dos", "es", ok(32)),
    ("cuarenta-y-cinco", AGE, "tengo cuarenta y cinco años", "es", ok(45)),
    ("cien", AGE, "cien", "es", ok(100)),
    ("ciento-veinte", AGE, "ciento veinte", "es", ok(120)),
    ("cero", AGE, "cero", "es", ok(0)),
    ("emoji-noise", AGE, "🎂 25 🎉", "es", ok(25)),
    ("mas-o-menos", AGE, "más o menos 25", "es", ok(25)),
    ("control-chars", AGE, "2\x005\x07", "es", ok(25)),
    ("un-hijo", CHILDREN, "un hijo", "es", ok(1)),
    ("tres-hijos", CHILDREN, "tres hijos", "es", ok(3)),
    ("thousands-comma", CHILDREN, "1,500", "es", ok(1500)),
    ("thousands-dot", CHILDREN, "1.500", "es", ok(1500)),
    ("thousands-space", CHILDREN, "1 500", "es", ok(1500)),
    ("millions-dots", CHILDREN, "1.250.000", "es", ok(1_250_000)),
    ("doscientos", CHILDREN, "doscientos", "es", ok(200)),
    ("mil-quinientos", CHILDREN, "mil quinientos", "es", ok(1500)),
    ("dos-mil-veinticuatro", CHILDREN, "dos mil veinticuatro", "es", ok(2024)),
    ("one-hundred-and-five", CHILDREN, "one hundred and five", "en", ok(105)),
    ("nine-hundred-ninety-nine", CHILDREN, "nine hundred ninety nine", "en", ok(999)),
    ("novecientos-noventa-y-nueve", CHILDREN, "novecientos noventa y nueve", "es", ok(999)),
    ("negative", CHILDREN, "-3", "es", ok(-3)),
    ("whole-decimal", CHILDREN, "3.0", "es", ok(3)),
    ("too-small", AGE, "-5", "es", no("too_small", min=0, max=120)),
    ("too-large", AGE, "150", "es", no("too_large", min=0, max=120)),
    ("too-large-thousands", AGE, "1,500", "es", no("too_large")),
    ("too-large-huge-number", AGE, "9" * 30, "es", no("too_large")),
    ("two-numbers", AGE, "25 o 26", "es", no("ambiguous", values=[25, 26])),
    ("decimal", AGE, "2.5", "es", no("not_a_number")),
    ("decimal-comma", AGE, "2,5", "es", no("not_a_number")),
    ("words", AGE, "no me acuerdo", "es", no("unsure", doubt="dont_know")),
    ("empty", AGE, "", "es", no("empty")),
    ("huge", AGE, "9" * 100_000, "es", no("not_a_number")),
]

DECIMAL_CASES = [
    ("dot", INCOME, "3.5", "es", ok(3.5)),
    ("comma", INCOME, "3,5", "es", ok(3.5)),
    ("whole", INCOME, "3", "es", ok(3.0)),
    ("dollars", INCOME, "$1,200.50", "en", ok(1200.5)),
    ("european", INCOME, "1.200,50", "es", ok(1200.5)),
    ("space-thousands", INCOME, "1 200", "es", ok(1200.0)),
    ("thousands-and-decimals", INCOME, "950.000,50", "es", ok(950_000.5)),
    ("mil", INCOME, "mil", "es", ok(1000.0)),
    ("dos-mil", INCOME, "dos mil pesos", "es", ok(2000.0)),
    ("digits-mil", INCOME, "15 mil pesos", "es", ok(15000.0)),
    ("k", INCOME, "15k", "es", ok(15000.0)),
    ("y-medio", HOURS, "dos y medio", "es", ok(2.5)),
    ("sentence", HOURS, "trabajo 8.5 horas", "es", ok(8.5)),
    ("thousands-out-of-range", HOURS, "1,250", "es", no("too_large", min=1, max=24)),
    ("too-small", HOURS, "0.5", "es", no("too_small", min=1, max=24)),
    ("too-large", INCOME, "2 millones", "es", no("too_large", min=0, max=1_000_000)),
    ("ambiguous", INCOME, "entre 3000 y 4000", "es", no("ambiguous")),
    ("not-a-number", INCOME, "poquito", "es", no("not_a_number")),
    ("empty", INCOME, " ", "es", no("empty")),
]

TEXT_CASES = [
    ("plain", COMMENT, "Todo bien", "es", ok("Todo bien")),
    ("strip-collapse", COMMENT, "  muy   bien\n\n gracias  ", "es", ok("muy bien gracias")),
    ("keeps-emoji-accents", COMMENT, "¡Gracias! 🙏 señora", "es", ok("¡Gracias! 🙏 señora")),
    ("control-chars", COMMENT, "hola\x00\x07 mun\u200bdo\r\n\x1b ok", "es", ok("hola mundo ok")),
    ("exact-limit", COMMENT, "a" * 160, "es", ok("a" * 160)),
    ("too-long", COMMENT, "a" * 161, "es", no("too_long", max_length=160, length=161)),
    ("no-limit", STORY, "b" * 5000, "es", ok("b" * 5000)),
    ("huge", COMMENT, HUGE, "es", no("too_long")),
    ("empty", COMMENT, "", "es", no("empty")),
    ("whitespace", COMMENT, " \t\n ", "es", no("empty")),
]

DATE_CASES = [
    ("iso", RETURN_DATE, "2024-03-15", "es", ok("2024-03-15")),
    ("slashes", RETURN_DATE, "15/03/2024", "es", ok("2024-03-15")),
    ("dashes", RETURN_DATE, "15-03-2024", "es", ok("2024-03-15")),
    ("dots-short-year", RETURN_DATE, "15.03.24", "es", ok("2024-03-15")),
    ("no-zero-padding", RETURN_DATE, "15/3/24", "es", ok("2024-03-15")),
    ("day-first-ambiguous", RETURN_DATE, "05/03/2024", "es", ok("2024-03-05")),
    ("us-style", RETURN_DATE, "3/15/2024", "en", ok("2024-03-15")),
    ("short-year-1900s", RETURN_DATE, "15/03/98", "es", ok("1998-03-15")),
    ("compact", RETURN_DATE, "20240315", "es", ok("2024-03-15")),
    ("de-marzo-de", RETURN_DATE, "15 de marzo de 2024", "es", ok("2024-03-15")),
    ("marzo-no-de", RETURN_DATE, "15 marzo 2024", "es", ok("2024-03-15")),
    ("month-first", RETURN_DATE, "marzo 15 2024", "es", ok("2024-03-15")),
    ("english", RETURN_DATE, "March 15, 2024", "en", ok("2024-03-15")),
    ("english-ordinal", RETURN_DATE, "the 1st of May 2020", "en", ok("2020-05-01")),
    ("abbreviated", RETURN_DATE, "15 mar 24", "es", ok("2024-03-15")),
    ("abbreviated-dot", RETURN_DATE, "15 dic. 2023", "es", ok("2023-12-15")),
    ("accents-weekday", RETURN_DATE, "el sábado 15 de Marzo del 2024", "es", ok("2024-03-15")),
    ("month-year", RETURN_DATE, "marzo 2024", "es", ok("2024-03-01")),
    ("month-year-en", RETURN_DATE, "March 2024", "en", ok("2024-03-01")),
    ("numeric-month-year", RETURN_DATE, "03/2024", "es", ok("2024-03-01")),
    ("setiembre", RETURN_DATE, "setiembre 2023", "es", ok("2023-09-01")),
    ("typo-febero", RETURN_DATE, "15 de febero de 2021", "es", ok("2021-02-15")),
    ("no-year", RETURN_DATE, "15 de marzo", "es", ok("2024-03-15")),
    ("hoy", RETURN_DATE, "hoy", "es", ok("2024-06-10")),
    ("ayer", RETURN_DATE, "ayer", "es", ok("2024-06-09")),
    ("ayer-sentence", RETURN_DATE, "llegué ayer", "es", ok("2024-06-09")),
    ("antier", RETURN_DATE, "antier", "es", ok("2024-06-08")),
    ("anteayer", RETURN_DATE, "anteayer", "es", ok("2024-06-08")),
    ("antes-de-ayer", RETURN_DATE, "antes de ayer", "es", ok("2024-06-08")),
    ("today", RETURN_DATE, "today", "en", ok("2024-06-10")),
    ("yesterday", RETURN_DATE, "Yesterday!", "en", ok("2024-06-09")),
    ("feb-31", RETURN_DATE, "31/02/2024", "es", no("not_a_date")),
    ("feb-29-leap", RETURN_DATE, "29/02/2024", "es", ok("2024-02-29")),
    ("feb-29-no-leap", RETURN_DATE, "29/02/2023", "es", no("not_a_date")),
    ("month-13", RETURN_DATE, "13/13/2024", "es", no("not_a_date")),
    ("year-out-of-range", RETURN_DATE, "15/03/1492", "es", no("not_a_date")),
    ("two-months", RETURN_DATE, "marzo o abril 2024", "es", no("ambiguous")),
    ("words", RETURN_DATE, "hace mucho", "es", no("not_a_date")),
    ("just-a-number", RETURN_DATE, "15", "es", no("not_a_date")),
    ("empty", RETURN_DATE, "", "es", no("empty")),
    ("huge", RETURN_DATE, HUGE, "es", no("not_a_date")),
]

REGION_CASES = [
    ("name", STATE, "Jalisco", "es", ok("14")),
    ("name-sentence", STATE, "vivo en Jalisco", "es", ok("14")),
    ("name-no-accent", STATE, "soy de nuevo leon", "es", ok("19")),
    ("name-accent-upper", STATE, "NUEVO LEÓN", "es", ok("19")),
    ("abbr-nl", STATE, "NL", "es", ok("19")),
    ("abbr-nl-dots", STATE, "N.L.", "es", ok("19")),
    ("cdmx-name", STATE, "ciudad de mexico", "es", ok("09")),
    ("cdmx", STATE, "CDMX", "es", ok("09")),
    ("df", STATE, "D.F.", "es", ok("09")),
    ("distrito-federal", STATE, "Distrito Federal", "es", ok("09")),
    ("mexico-city", STATE, "Mexico City", "en", ok("09")),
    ("edomex", STATE, "edomex", "es", ok("15")),
    ("edo-mex", STATE, "Edo. Méx.", "es", ok("15")),
    ("estado-de-mexico", STATE, "Estado de México", "es", ok("15")),
    ("mexico-alone", STATE, "México", "es", Unsure("15", "Estado de México")),
    ("mexico-after-state", STATE, "Jalisco, México", "es", ok("14")),
    ("baja-california", STATE, "Baja California", "es", ok("02")),
    ("baja-california-sur", STATE, "Baja California Sur", "es", ok("03")),
    ("baja-norte", STATE, "baja california norte", "es", ok("02")),
    ("baja-sur", STATE, "Baja Sur", "es", ok("03")),
    ("bc", STATE, "BC", "es", ok("02")),
    ("bcs", STATE, "bcs", "es", ok("03")),
    ("qroo", STATE, "QRoo", "es", ok("23")),
    ("q-roo", STATE, "Q. Roo", "es", ok("23")),
    ("qro", STATE, "Qro", "es", ok("22")),
    ("slp", STATE, "SLP", "es", ok("24")),
    ("san-luis", STATE, "San Luis Potosí", "es", ok("24")),
    ("michoacan-no-accent", STATE, "Michoacan", "es", ok("16")),
    ("michoacan-de-ocampo", STATE, "Michoacán de Ocampo", "es", ok("16")),
    ("veracruz-long", STATE, "Veracruz de Ignacio de la Llave", "es", ok("30")),
    ("coahuila-de-zaragoza", STATE, "coahuila de zaragoza", "es", ok("05")),
    ("sonora", STATE, "sonora", "es", ok("26")),
    ("yucatan", STATE, "yucatan", "es", ok("31")),
    ("emoji-noise", STATE, "🌵 Sonora 🌵", "es", ok("26")),
    ("abbr-common-word-alone", STATE, "Sin", "es", ok("25")),
    ("abbr-common-word-in-sentence", STATE, "sin trabajo", "es", no("unknown_region")),
    ("code", STATE, "19", "es", ok("19")),
    ("code-one-digit", STATE, "9", "es", ok("09")),
    ("code-filler", STATE, "el 9", "es", ok("09")),
    ("code-unknown", STATE, "33", "es", no("unknown_region")),
    ("typo-chiuaua", STATE, "Chiuaua", "es", Unsure("08", "Chihuahua")),
    ("typo-guanajuto", STATE, "Guanajuto", "es", Unsure("11", "Guanajuato")),
    ("typo-veracrus", STATE, "Veracrus", "es", Unsure("30", "Veracruz")),
    ("typo-sacatecas", STATE, "vivo en sacatecas", "es", Unsure("32", "Zacatecas")),
    ("typo-baja-sur", STATE, "baja califrnia sur", "es", Unsure("03", "Baja California Sur")),
    ("typo-mexico", STATE, "mexcio", "es", Unsure("15", "Estado de México")),
    ("two-states", STATE, "Jalisco y Michoacán", "es", no("ambiguous")),
    ("two-states-different-length", STATE, "Tamaulipas/Nuevo León", "es", no("ambiguous")),
    ("abbr-common-word-with-state", STATE, "col centro, jalisco", "es", ok("14")),
    ("mex-alone", STATE, "Mex", "es", Unsure("15", "Estado de México")),
    ("us-state", STATE, "Texas", "en", no("unknown_region")),
    ("dont-know", STATE, "no sé", "es", no("unsure")),
    ("empty", STATE, "", "es", no("empty")),
    ("huge", STATE, "Jalisco " * 10_000, "es", no("unknown_region")),
    ("default-regions", STATE_DEFAULT, "oaxaca", "es", ok("20")),
    ("custom-regions", ZONES, "la frontera", "es", ok("N")),
    ("custom-regions-abbr", ZONES, "nte", "es", ok("N")),
    ("custom-regions-typo", ZONES, "sureste!!", "es", ok("S")),
    ("custom-regions-unknown", ZONES, "Jalisco", "es", no("unknown_region")),
]

# Precision first: a reply becomes an answer only when it says that answer; doubt is asked again.
PRECISION_CASES = [
    ("confused-no-entiendo", YES_NO_BARE, "no entiendo", "es", no("unsure", doubt="confused")),
    ("confused-perdon", YES_NO_BARE, "perdón, no entendí la pregunta", "es", no("unsure", doubt="confused")),
    ("confused-que", YES_NO_BARE, "¿qué?", "es", no("unsure", doubt="confused")),
    ("confused-question-mark", YES_NO_BARE, "?", "es", no("unsure", doubt="confused")),
    ("confused-como-asi", YES_NO_BARE, "cómo así", "es", no("unsure", doubt="confused")),
    ("confused-which-one", YES_NO_BARE, "which one", "en", no("unsure", doubt="confused")),
    ("confused-what-do-you-mean", YES_NO_BARE, "what do you mean?", "en", no("unsure", doubt="confused")),
    ("confused-no-clue", YES_NO_BARE, "no clue what you mean", "en", no("unsure", doubt="confused")),
    ("dont-know-no-idea", YES_NO_BARE, "no idea", "en", no("unsure", doubt="dont_know")),
    ("dont-know-ni-idea", YES_NO_BARE, "ni idea", "es", no("unsure", doubt="dont_know")),
    ("dont-know-no-me-acuerdo", YES_NO_BARE, "no me acuerdo", "es", no("unsure", doubt="dont_know")),
    ("dont-know-sepa", YES_NO_BARE, "sepa", "es", no("unsure", doubt="dont_know")),
    ("dont-know-si-cuenta", YES_NO_BARE, "no sé si cuenta el DIF", "es", no("unsure", doubt="dont_know")),
    ("whole-no-gracias", YES_NO_BARE, "no, gracias", "es", ok("no")),
    ("whole-si-claro", YES_NO_BARE, "sí claro", "es", ok("yes")),
    ("whole-nel", YES_NO_BARE, "nel", "es", ok("no")),
    ("whole-pues-si", YES_NO_BARE, "pues sí", "es", ok("yes")),
    ("whole-la-verdad-no", YES_NO_BARE, "la verdad no", "es", ok("no")),
    ("whole-creo-que-si", YES_NO_BARE, "yo creo que sí", "es", ok("yes")),
    ("whole-si-algo", YES_NO_BARE, "sí, algo", "es", ok("yes")),
    ("whole-no-tengo", YES_NO_BARE, "no tengo", "es", ok("no")),
    ("whole-no-nunca", YES_NO_BARE, "no, nunca", "es", ok("no")),
    ("whole-i-dont", YES_NO_BARE, "I don't", "en", ok("no")),
    ("not-whole-no-siempre", YES_NO_BARE, "no siempre", "es", no("not_understood")),
    ("not-whole-no-mucho", YES_NO_BARE, "no mucho", "es", no("not_understood")),
    ("not-whole-si-pero", YES_NO_BARE, "sí pero a veces no", "es", no("unsure")),
    ("not-whole-si-y-no", YES_NO_BARE, "sí y no", "es", no("ambiguous")),
    ("not-whole-tengo", YES_NO_BARE, "tengo", "es", no("not_understood")),
    ("means-si", RETURNED, "sí", "es", ok("returnee")),
    ("means-no", RETURNED, "no", "es", ok("community")),
    ("means-nop", RETURNED, "nop", "es", ok("community")),
    ("means-claro", RETURNED, "claro", "es", ok("returnee")),
    ("means-yes-en", RETURNED, "yes", "en", ok("returnee")),
    ("means-label", RETURNED, "no, nunca me fui", "es", ok("community")),
    ("means-contradiction", RETURNED, "no, regresé", "es", no("ambiguous")),
    ("means-confused", RETURNED, "no entiendo", "es", no("unsure")),
    ("means-several-yes", WORK_STATUS, "sí", "es", no("ambiguous", means="yes")),
    ("means-no-with-label", WORK_STATUS, "no, busco trabajo", "es", ok("looking")),
    ("label-with-no", WORK_STATUS, "no busco trabajo", "es", ok("not_looking")),
    ("negated-label", WORK_STATUS, "no tengo empleo", "es", no("not_understood")),
    ("negated-synonym", WORK_STATUS, "ya no trabajo", "es", no("not_understood")),
    ("negated-english", WORK_STATUS, "I don't have a job", "en", no("ambiguous", means="no")),
    ("negated-then-label", WORK_STATUS, "no tengo empleo, trabajo por mi cuenta", "es", ok("own_account")),
    ("negated-reason", REASON, "no me deportaron", "es", no("not_understood")),
    ("label-no-is-not-no-entiendo", SAFE, "no entiendo", "es", no("unsure", doubt="confused")),
    ("label-no", SAFE, "no", "es", ok("no")),
    ("label-si", SAFE, "si", "es", ok("yes")),
    ("hedge-label-wins", SAFE, "más o menos", "es", ok("partly")),
    ("hedge-negated-synonym", SAFE, "no seguro", "es", no("not_understood")),
    ("dont-know-choice", PLANS, "no sé", "es", ok("dont_know")),
    ("dont-know-choice-en", PLANS, "idk", "en", ok("dont_know")),
    ("dont-know-choice-not-confusion", PLANS, "no entiendo", "es", no("unsure", doubt="confused")),
    ("dont-know-label", DONT_KNOW_LABEL, "ni idea", "es", ok("dk")),
    ("dont-know-label-en", DONT_KNOW_LABEL, "no idea", "en", ok("dk")),
    ("label-part-beats-skip", SEX, "prefiero no decir", "es", ok("other")),
    ("label-part-beats-skip-en", SEX, "prefer not to say", "en", ok("other")),
    ("number-dont-know", AGE, "no sé", "es", no("unsure")),
    ("number-confused", AGE, "¿cómo?", "es", no("unsure")),
    ("date-dont-remember", RETURN_DATE, "no me acuerdo bien", "es", no("unsure")),
    ("text-confused", COMMENT, "¿qué?", "es", no("unsure", doubt="confused")),
    ("text-dont-know-is-text", COMMENT, "no sé", "es", ok("no sé")),
]

ALL_CASES = (
    PRECISION_CASES
    + YES_NO_CASES
    + CHOICE_CASES
    + MULTI_CASES
    + INTEGER_CASES
    + DECIMAL_CASES
    + TEXT_CASES
    + DATE_CASES
    + REGION_CASES
)


def _ids(cases: list[tuple[Any, ...]]) -> list[str]:
    return [f"{case[1].type}:{case[0]}" for case in cases]


def _check(outcome: Any, expected: Any) -> None:
    if isinstance(expected, Rejected) and not expected.detail:
        assert isinstance(outcome, Rejected), outcome
        assert outcome.reason == expected.reason, outcome
    elif isinstance(expected, Rejected):
        assert isinstance(outcome, Rejected), outcome
        assert outcome.reason == expected.reason, outcome
        assert expected.detail.items() <= outcome.detail.items(), outcome
    else:
        assert outcome == expected
        assert type(outcome.value) is type(expected.value)


@pytest.mark.parametrize(
    ("label", "question", "text", "language", "expected"), ALL_CASES, ids=_ids(ALL_CASES)
)
def test_parse_answer(label: str, question: Question, text: str, language: str, expected: Any) -> None:
    _check(parse_answer(question, text, language, today=TODAY), expected)


# ----- Dates without a reference day and two-digit year pivot ---------------------------------------------

NO_TODAY_CASES = [
    ("ayer", "ayer", no("not_a_date")),
    ("hoy", "hoy", no("not_a_date")),
    ("no-year", "15 de marzo", no("not_a_date")),
    ("absolute", "15/03/2024", ok("2024-03-15")),
]


@pytest.mark.parametrize(("label", "text", "expected"), NO_TODAY_CASES, ids=[c[0] for c in NO_TODAY_CASES])
def test_date_without_today(label: str, text: str, expected: Any) -> None:
    _check(parse_date(RETURN_DATE, text, "es"), expected)


PIVOT_CASES = [
    ("same-year", date(2024, 6, 10), "1/1/24", "2024-01-01"),
    ("next-year-is-1900s", date(2024, 6, 10), "1/1/25", "1925-01-01"),
    ("zero", date(2024, 6, 10), "1/1/00", "2000-01-01"),
    ("later-today", date(2030, 1, 1), "1/1/29", "2029-01-01"),
]


@pytest.mark.parametrize(("label", "today", "text", "iso"), PIVOT_CASES, ids=[c[0] for c in PIVOT_CASES])
def test_two_digit_year_pivot(label: str, today: date, text: str, iso: str) -> None:
    assert parse_date(RETURN_DATE, text, "es", today=today) == Accepted(iso)


# ----- Registry, data and robustness ----------------------------------------------------------------------

DIRECT_CASES = [
    (parse_yes_no, CONSENT, "si", ok("yes")),
    (parse_choice, REASON, "3", ok("deported")),
    (parse_multi, NEEDS, "1,2", ok(["money", "jobs"])),
    (parse_integer, AGE, "30", ok(30)),
    (parse_decimal, INCOME, "30", ok(30.0)),
    (parse_text, COMMENT, " hola ", ok("hola")),
    (parse_date, RETURN_DATE, "2024-01-02", ok("2024-01-02")),
    (parse_region, STATE, "Puebla", ok("21")),
]


@pytest.mark.parametrize(
    ("parser", "question", "text", "expected"), DIRECT_CASES, ids=[c[0].__name__ for c in DIRECT_CASES]
)
def test_parsers_callable_directly(parser: Any, question: Question, text: str, expected: Any) -> None:
    assert PARSERS[question.type] is parser
    _check(parser(question, text, "es", TODAY), expected)


def test_registry_covers_every_question_type() -> None:
    assert set(PARSERS) == set(QUESTION_TYPES)


def test_unknown_type_is_rejected() -> None:
    question = Question("x", "signature", {"es": "?"})
    assert parse_answer(question, "hola", "es") == Rejected("not_understood", {"type": "signature"})


def test_every_rejection_reason_is_exercised() -> None:
    reasons = {case[-1].reason for case in ALL_CASES if isinstance(case[-1], Rejected)}
    assert reasons == set(REASONS)


def test_at_least_150_cases() -> None:
    assert len(ALL_CASES) >= 150


def test_outcomes_are_frozen() -> None:
    with pytest.raises(AttributeError):
        Accepted(1).value = 2  # type: ignore[misc]


STATE_CASES = [
    ("01", "Aguascalientes", "AGS"),
    ("05", "Coahuila", "COAH"),
    ("07", "Chiapas", "CHIS"),
    ("08", "Chihuahua", "CHIH"),
    ("09", "Ciudad de México", "CDMX"),
    ("15", "Estado de México", "EDOMEX"),
    ("16", "Michoacán", "MICH"),
    ("19", "Nuevo León", "NL"),
    ("22", "Querétaro", "QRO"),
    ("23", "Quintana Roo", "QROO"),
    ("24", "San Luis Potosí", "SLP"),
    ("28", "Tamaulipas", "TAMPS"),
    ("31", "Yucatán", "YUC"),
    ("32", "Zacatecas", "ZAC"),
]


@pytest.mark.parametrize(("code", "name", "abbreviation"), STATE_CASES, ids=[c[1] for c in STATE_CASES])
def test_state_data(code: str, name: str, abbreviation: str) -> None:
    region = next(r for r in MEXICO_STATES if r.code == code)
    assert region.name == name
    assert abbreviation in region.abbreviations


def test_states_are_the_32_inegi_codes_in_order() -> None:
    assert [r.code for r in MEXICO_STATES] == [f"{i:02d}" for i in range(1, 33)]
    assert len({r.name for r in MEXICO_STATES}) == 32
    assert REGION_SETS == {"mx-states": MEXICO_STATES}


@pytest.mark.parametrize("region", MEXICO_STATES, ids=[r.code for r in MEXICO_STATES])
def test_every_state_name_abbreviation_and_synonym_parses(region: Region) -> None:
    assert parse_region(STATE, region.name, "es") == Accepted(region.code)
    assert parse_region(STATE, region.code, "es") == Accepted(region.code)
    for other in (*region.abbreviations, *region.synonyms):
        outcome = parse_region(STATE, other, "es")
        assert outcome in (Accepted(region.code), Unsure(region.code, region.name)), (other, outcome)


ANY_TEXT = st.text(max_size=300) | st.sampled_from(["", "\x00", "\ud800", "1" * 5000, "9.9.9,9", "🙂" * 200])


@settings(max_examples=60, deadline=None)
@given(text=ANY_TEXT)
def test_parsers_never_raise(text: str) -> None:
    for question in (CONSENT, REASON, AGE_BAND, NEEDS, AGE, INCOME, COMMENT, RETURN_DATE, STATE):
        outcome = parse_answer(question, text, "es", today=TODAY)
        assert isinstance(outcome, Accepted | Rejected | Unsure)
        if isinstance(outcome, Rejected):
            assert outcome.reason in REASONS


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=40))
def test_ascii_text_is_normalized_as_any_text_is(text: str) -> None:
    from surveys.text import _normalize_any, normalize

    assert normalize(text) == _normalize_any(text)


def test_a_remembered_outcome_is_the_parsers_own_and_not_shared() -> None:
    first = parse_answer(NEEDS, "1 y 2", "es")
    assert first == parse_multi(NEEDS, "1 y 2", "es")
    first.value.append("changed")
    assert parse_answer(NEEDS, "1 y 2", "es") == parse_multi(NEEDS, "1 y 2", "es")
    twin = Question(NEEDS.id, "multi", NEEDS.text, choices=NEEDS.choices[::-1])
    assert parse_answer(twin, "1", "es") == parse_multi(twin, "1", "es") != parse_answer(NEEDS, "1", "es")


def test_dates_are_parsed_against_the_day_given_each_time() -> None:
    assert parse_answer(RETURN_DATE, "ayer", "es", TODAY) == Accepted("2024-06-09")
    assert parse_answer(RETURN_DATE, "ayer", "es", date(2024, 6, 20)) == Accepted("2024-06-19")
