"""Importing contacts from a CSV file: staff's lists of people who came back (reception centres, programmes).

Columns: `phone` or `telegram_chat_id` (one per row), and optionally `language` (es, en), `tags` (separated by
spaces), `timezone` (America/Tijuana), `channel` (sms or whatsapp, for phones) and `opt_in` (when and where the
person agreed to WhatsApp messages: "2026-01-15 formulario de registro", or sí; `opt_in_source` may hold the
where), under these names or the Spanish ones staff write (`teléfono`, `celular`, `idioma`, `etiquetas`,
`zona_horaria`, `canal`, `consentimiento`, `origen_consentimiento`; `HEADERS` lists them all, compared without
case or accents). Phone numbers are normalized to
E.164 and stored exactly as the webhooks store a sender (encrypted address, keyed hash), so a person who was
imported and later writes in is the same contact. Rows for the same person are merged (tags united); an existing
contact keeps its answers, its language choice and its opt-out: importing never re-activates someone who said STOP.
"""

from __future__ import annotations

import csv
import io
import re
import secrets
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import phonenumbers
from sqlalchemy import func, select, text
from sqlalchemy.dialects import postgresql, sqlite

from service.campaigns import CampaignError, normalize_tag
from service.campaigns.timing import TimingError, check_zone
from service.inbox import PHONE_CHANNELS
from service.incentives.currencies import can_top_up
from service.models import Contact, OptOutMarker
from service.privacy import InvalidAddress, normalize_phone

HEADERS = {
    # a mobile column first: when a list has both a mobile and another phone column, the mobile is used
    "phone": ("celular", "cel", "movil", "mobile", "cell", "cellphone", "phone", "telefono", "tel",
              "phone_number", "numero_de_telefono", "telefono_celular"),
    "telegram_chat_id": ("telegram_chat_id", "telegram", "chat_id", "telegram_id", "id_de_telegram"),
    "language": ("language", "idioma", "lengua", "lang"),
    "tags": ("tags", "tag", "etiquetas", "etiqueta"),
    "timezone": ("timezone", "time_zone", "zona_horaria", "huso_horario"),
    "channel": ("channel", "canal"),
    "opt_in": ("opt_in", "optin", "consentimiento", "consentimiento_whatsapp", "opt_in_whatsapp",
               "fecha_consentimiento", "autorizacion", "acepta_whatsapp"),
    "opt_in_source": ("opt_in_source", "origen_consentimiento", "fuente_consentimiento", "consentimiento_origen",
                      "origen_opt_in", "fuente_opt_in"),
}
COLUMNS = tuple(HEADERS)
_CANONICAL = {alias: column for column, aliases in HEADERS.items() for alias in aliases}
LANGUAGES = {
    "es": "es", "spa": "es", "espanol": "es", "español": "es", "spanish": "es",
    "en": "en", "eng": "en", "ingles": "en", "inglés": "en", "english": "en",
}
CHUNK = 500
_CHAT_ID = re.compile(r"^-?\d{1,20}$")
_TAG_SPLIT = re.compile(r"[\s,;]+")


class UnreadableFile(ValueError):
    """The file cannot be imported at all (unreadable, no address column); the message says why."""


@dataclass
class Person:
    """One contact as the file describes it, merged over its rows."""

    line: int
    channel: str
    identity: str
    reply_to: str
    language: str | None = None
    tags: list[str] = field(default_factory=list)
    timezone: str | None = None
    warning: str | None = None
    opt_in: OptIn | None = None


@dataclass(frozen=True)
class OptIn:
    """The person's consent to WhatsApp messages from the programme: when (None: as of the import) and where."""

    at: datetime | None
    source: str | None

    def newer_than(self, other: datetime | None) -> bool:
        return other is None or (self.at is not None and self.at > _aware(other))


@dataclass(frozen=True)
class Payout:
    """The survey whose credit the imported numbers would be paid, to warn about numbers it cannot top up."""

    survey_id: str
    currency: str


@dataclass
class Report:
    rows: int = 0
    created: int = 0
    updated: int = 0
    merged: int = 0
    kept_opted_out: int = 0
    skipped_erased: int = 0
    """People who asked to be erased: their marker (a keyed hash, no number) keeps them out of every list."""
    opt_ins: int = 0
    """People with an opt-in in the file."""
    problems: list[tuple[int, str]] = field(default_factory=list)
    warnings: list[tuple[int, str]] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    columns: dict[str, list[str]] = field(default_factory=dict)

    @property
    def imported(self) -> int:
        return self.created + self.updated


def count_rows(path: Path) -> int:
    """Data rows in the file (lines after the header), for a progress bar."""
    with open(path, "rb") as handle:
        return max(0, sum(1 for _ in handle) - 1)


def read(text: Iterable[str], default_region: str, extra_tags: Iterable[str] = (),
         report: Report | None = None, payout: Payout | None = None) -> Iterator[Person | tuple[int, str]]:
    """Each data row as a Person, or (line, problem) when it cannot be used."""
    report = report if report is not None else Report()
    lines = iter(text)
    first = next(lines, "")
    delimiter = ";" if first.count(";") > first.count(",") else "\t" if "\t" in first else ","
    reader = csv.reader(_chain([first], lines), delimiter=delimiter)
    header = next(reader, [])
    positions = _columns(header, report)
    extra = [normalize_tag(t) for t in extra_tags]
    for values in reader:
        if not any(v.strip() for v in values):
            continue
        report.rows += 1
        row = {
            column: next((values[i].strip() for i in indexes if i < len(values) and values[i].strip()), "")
            for column, indexes in positions.items()
        }
        try:
            yield _person(reader.line_num, row, default_region, extra, payout)
        except (InvalidAddress, CampaignError, TimingError) as error:
            yield reader.line_num, str(error)


def header_key(name: str) -> str:
    """A column name as compared: lowercase, without accents, '_' for spaces and dashes ('Zona horaria')."""
    plain = "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))
    return re.sub(r"[\s\-.]+", "_", plain.strip().lower()).strip("_")


def _columns(header: list[str], report: Report) -> dict[str, list[int]]:
    """Column -> the positions it is read from (several for phone: mobile first); records what is ignored."""
    found: dict[str, list[tuple[int, int]]] = {}
    for position, name in enumerate(header):
        column = _CANONICAL.get(header_key(name))
        if column is None:
            if name.strip():
                report.ignored_columns.append(name.strip())
            continue
        found.setdefault(column, []).append((HEADERS[column].index(header_key(name)), position))
    if "phone" not in found and "telegram_chat_id" not in found:
        raise UnreadableFile(
            "the first line must name the columns, with phone or telegram_chat_id among them (in Spanish: "
            f"teléfono or celular) (found: {', '.join(h.strip() for h in header if h.strip()) or 'nothing'})")
    for column, places in found.items():
        if len(places) > 1 and column != "phone":
            names = " and ".join(repr(header[p].strip()) for _, p in sorted(places, key=lambda x: x[1]))
            raise UnreadableFile(f"{names} are both the {column} column: keep one")
    positions = {column: [p for _, p in sorted(places)] for column, places in found.items()}
    report.columns = {column: [header[p].strip() for p in ps] for column, ps in positions.items()}
    return positions


def _person(line: int, row: dict[str, str], default_region: str, extra: list[str],
            payout: Payout | None = None) -> Person:
    phone, chat = row.get("phone", ""), row.get("telegram_chat_id", "")
    if phone and chat:
        raise InvalidAddress("both phone and telegram_chat_id: write one contact per row")
    if not phone and not chat:
        raise InvalidAddress("no phone or telegram_chat_id")
    warning = None
    if phone:
        channel = (row.get("channel") or "sms").lower()
        if channel not in PHONE_CHANNELS:
            raise InvalidAddress(f"channel {channel!r} is not sms, whatsapp or voice")
        identity = normalize_phone(phone, default_region)
        reply_to = f"whatsapp:{identity}" if channel == "whatsapp" else identity
        warning = _unpayable(identity, payout)
    else:
        if not _CHAT_ID.match(chat):
            raise InvalidAddress("telegram_chat_id must be the chat's number, like 123456789")
        channel, identity, reply_to = "telegram", chat, chat
    language = None
    if row.get("language"):
        language = LANGUAGES.get(row["language"].lower())
        if language is None:
            raise InvalidAddress(f"language {row['language']!r} is not es or en")
    tags = [normalize_tag(t) for t in _TAG_SPLIT.split(row.get("tags", "")) if t]
    timezone = check_zone(row["timezone"]) if row.get("timezone") else None
    opt_in = read_opt_in(row.get("opt_in", ""), row.get("opt_in_source", ""))
    return Person(line, channel, identity, reply_to, language, _unite(tags, extra), timezone, warning, opt_in)


_YES = frozenset({"si", "sí", "yes", "y", "s", "x", "1", "true", "verdadero", "acepto", "acepta"})
_NO = frozenset({"no", "n", "0", "false", "falso"})
_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?)?|\d{1,2}[/-]\d{1,2}[/-]\d{4})\s*[;,|:-]?\s*(.*)$")


def read_opt_in(value: str, source: str = "") -> OptIn | None:
    """The opt_in column: a date (2026-01-15, 15/01/2026), optionally followed by where it was given
    ("2026-01-15 formulario de registro"), or sí/yes (given, as of the import); empty or no: none."""
    text = value.strip()
    source = source.strip()
    if not text or text.lower() in _NO:
        return None
    if text.lower() in _YES:
        return OptIn(None, source[:128] or None)
    found = _DATE.match(text)
    if found is None:
        raise InvalidAddress(f"opt_in {value!r} is not a date (YYYY-MM-DD or DD/MM/YYYY, then its source) nor sí/no")
    when = _opt_in_date(found.group(1), value)
    return OptIn(when, (source or found.group(2).strip())[:128] or None)


def _opt_in_date(text: str, value: str) -> datetime:
    try:
        if "/" in text or (text.count("-") == 2 and len(text.split("-")[0]) <= 2):
            day, month, year = (int(part) for part in re.split(r"[/-]", text))
            when = datetime(year, month, day, tzinfo=UTC)
        else:
            when = datetime.fromisoformat(text.replace(" ", "T"))
            when = when if when.tzinfo else when.replace(tzinfo=UTC)
    except ValueError:
        raise InvalidAddress(f"opt_in {value!r} is not a real date") from None
    if when > datetime.now(UTC) + timedelta(days=1):
        raise InvalidAddress(f"opt_in {value!r} is in the future")
    return when


def _unpayable(e164: str, payout: Payout | None) -> str | None:
    """Why the survey's credit cannot reach this number, or None (it can, or there is no credit to pay)."""
    if payout is None:
        return None
    number = phonenumbers.parse(e164, None)
    country = phonenumbers.region_code_for_number(number)
    if can_top_up(country, payout.currency) is not False:
        return None
    return (f"a {country} number (+{number.country_code}): {payout.survey_id} pays its credit in "
            f"{payout.currency}, which cannot top up this number; imported, it can answer but not be paid")


def load(rt, people: Iterable[Person | tuple[int, str]], report: Report,
         progress: Callable[[int], Any] | None = None, dry_run: bool = False) -> Report:
    """Merge the file's people into the contacts, CHUNK rows per transaction."""
    merged = merge(rt, people, report, progress)
    if not dry_run:
        store(rt, merged, report)
    return report


def merge(rt, people: Iterable[Person | tuple[int, str]], report: Report,
          progress: Callable[[int], Any] | None = None) -> dict[tuple[str, str], Person]:
    """The file's people by (channel, address hash), rows of the same person merged; problems go to `report`."""
    merged: dict[tuple[str, str], Person] = {}
    for item in people:
        if progress is not None:
            progress(1)
        if isinstance(item, tuple):
            report.problems.append(item)
            continue
        if item.warning:
            report.warnings.append((item.line, item.warning))
        key = (item.channel, rt.vault.hash(item.channel, item.identity))
        if key in merged:
            report.merged += 1
            report.opt_ins += 1 if item.opt_in and not merged[key].opt_in else 0
            _merge(merged[key], item)
        else:
            merged[key] = item
            report.opt_ins += 1 if item.opt_in else 0
    return merged


def store(rt, merged: dict[tuple[str, str], Person], report: Report,
          progress: Callable[[int], Any] | None = None) -> Report:
    """Create or update the contacts, CHUNK people per transaction."""
    items = list(merged.items())
    for start in range(0, len(items), CHUNK):
        chunk = dict(items[start:start + CHUNK])
        _store(rt, chunk, report)
        if progress is not None:
            progress(len(chunk))
    return report


def _store(rt, people: dict[tuple[str, str], Person], report: Report) -> None:
    now = rt.now()
    vault = rt.vault
    with rt.sessions() as session, session.begin():
        dialect = session.get_bind().dialect.name
        statement = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[dialect]
        existing = _existing(session, people)
        new = [key for key in people if key not in existing]
        erased = _erased(session, vault, people, new)
        report.skipped_erased += len(erased)
        new = [key for key in new if key not in erased]
        rows: list[dict[str, Any]] = []
        for channel, address_hash in new:
            person = people[(channel, address_hash)]
            rows.append({
                "public_id": secrets.token_hex(8), "channel": channel, "address_hash": address_hash,
                "address_enc": vault.encrypt(person.reply_to), "language": person.language, "tags": person.tags,
                "timezone": person.timezone, "opted_out": False, "unreachable": False,
                "phone_hash": vault.hash("phone", person.identity) if channel in PHONE_CHANNELS else None,
                "opt_in_at": (person.opt_in.at or now) if person.opt_in else None,
                "opt_in_source": person.opt_in.source if person.opt_in else None,
                "created_at": now, "updated_at": now,
            })
        created: set[tuple[str, str]] = set()
        if rows:
            inserted = session.execute(
                statement(Contact).on_conflict_do_nothing(index_elements=["channel", "address_hash"])
                .returning(Contact.channel, Contact.address_hash),
                rows,
            ).all()
            created = {(channel, address_hash) for channel, address_hash in inserted}
        report.created += len(created)
        raced = {key: people[key] for key in new if key not in created}
        if raced:
            existing.update(_existing(session, raced))
        for key, contact in existing.items():
            person = people[key]
            tags = _unite(list(contact.tags or []), person.tags)
            if tags != list(contact.tags or []):
                contact.tags = tags
            if person.language and not contact.language:
                contact.language = person.language
            if person.timezone and person.timezone != contact.timezone:
                contact.timezone = person.timezone
            if person.opt_in and person.opt_in.newer_than(contact.opt_in_at):
                contact.opt_in_at = person.opt_in.at or now
                contact.opt_in_source = person.opt_in.source
            contact.updated_at = now
            report.updated += 1
            if contact.opted_out:
                report.kept_opted_out += 1


def _erased(session, vault, people: dict[tuple[str, str], Person], new: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """The people of `new` an erasure left a marker for (by address, or by phone number on any phone channel)."""
    wanted: dict[tuple[str, str], tuple[str, str]] = {}
    for channel, address_hash in new:
        wanted[(channel, address_hash)] = (channel, address_hash)
        if channel in PHONE_CHANNELS:
            wanted[("phone", vault.hash("phone", people[(channel, address_hash)].identity))] = (channel, address_hash)
    if not wanted:
        return set()
    hashes = sorted({hashed for _, hashed in wanted})
    found = set()
    for start in range(0, len(hashes), 500):
        found |= {tuple(row) for row in session.execute(
            select(OptOutMarker.kind, OptOutMarker.hash).where(OptOutMarker.hash.in_(hashes[start:start + 500])))}
    return {wanted[marker] for marker in found if marker in wanted}


def _existing(session, people: dict[tuple[str, str], Person]) -> dict[tuple[str, str], Contact]:
    hashes = sorted({address_hash for _, address_hash in people})
    found = session.scalars(
        select(Contact).where(Contact.address_hash.in_(hashes)).order_by(Contact.id).with_for_update()
    ).all()
    return {(c.channel, c.address_hash): c for c in found if (c.channel, c.address_hash) in people}


def _merge(into: Person, other: Person) -> None:
    into.tags = _unite(into.tags, other.tags)
    into.language = into.language or other.language
    into.timezone = into.timezone or other.timezone
    if other.opt_in and (into.opt_in is None or other.opt_in.newer_than(into.opt_in.at)):
        into.opt_in = other.opt_in


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _unite(first: list[str], second: Iterable[str]) -> list[str]:
    return list(dict.fromkeys([*first, *second]))


def _chain(*parts: Iterable[str]) -> Iterator[str]:
    for part in parts:
        yield from part


def open_text(path: Path) -> io.TextIOWrapper:
    """The CSV as text: UTF-8 (with or without Excel's BOM), else Latin-1 (old spreadsheets)."""
    raw = path.read_bytes()
    try:
        raw.decode("utf-8-sig")
        encoding = "utf-8-sig"
    except UnicodeDecodeError:
        encoding = "latin-1"
    return open(path, encoding=encoding, newline="")


@dataclass
class Tally:
    """How many contacts there are, by channel, language and tag; counts only, never an address."""

    total: int = 0
    opted_out: int = 0
    unreachable: int = 0
    channels: dict[str, int] = field(default_factory=dict)
    languages: dict[str, int] = field(default_factory=dict)
    tags: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def invitable(self) -> int:
        return self.total - self.opted_out - self.unreachable


def tally(rt) -> Tally:
    """The contacts counted for `retorno contacts list`: two GROUP BY queries, whatever the number of contacts."""
    result = Tally()
    with rt.sessions() as session:
        rows = session.execute(
            select(Contact.channel, Contact.language, Contact.opted_out, Contact.unreachable, func.count())
            .group_by(Contact.channel, Contact.language, Contact.opted_out, Contact.unreachable)
        ).all()
        tags = session.execute(_TAG_COUNTS[session.get_bind().dialect.name]).all()
    for channel, language, opted_out, unreachable, n in rows:
        result.total += n
        result.opted_out += n if opted_out else 0
        result.unreachable += n if unreachable and not opted_out else 0
        result.channels[channel] = result.channels.get(channel, 0) + n
        key = language or "not set"
        result.languages[key] = result.languages.get(key, 0) + n
    for tag, n, opted_out, unreachable in sorted(tags, key=lambda row: (-row[1], row[0])):
        result.tags[tag] = {"contacts": n, "invitable": n - opted_out - unreachable, "opted_out": opted_out}
    result.channels = dict(sorted(result.channels.items(), key=lambda item: (-item[1], item[0])))
    result.languages = dict(sorted(result.languages.items(), key=lambda item: (item[0] == "not set", -item[1], item[0])))
    return result


_TAG_COUNTS = {
    "postgresql": text(
        "SELECT t.tag, count(*), count(*) FILTER (WHERE c.opted_out), "
        "count(*) FILTER (WHERE c.unreachable AND NOT c.opted_out) "
        "FROM contacts c CROSS JOIN LATERAL jsonb_array_elements_text(c.tags::jsonb) AS t(tag) GROUP BY t.tag"
    ),
    "sqlite": text(
        "SELECT t.value, count(*), sum(c.opted_out), sum(c.unreachable AND NOT c.opted_out) "
        "FROM contacts c, json_each(c.tags) AS t GROUP BY t.value"
    ),
}
