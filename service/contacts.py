"""Importing contacts from a CSV file: staff's lists of people who came back (reception centres, programmes).

Columns: `phone` or `telegram_chat_id` (one per row), and optionally `language` (es, en), `tags` (separated by
spaces), `timezone` (America/Tijuana) and `channel` (sms or whatsapp, for phones). Phone numbers are normalized to
E.164 and stored exactly as the webhooks store a sender (encrypted address, keyed hash), so a person who was
imported and later writes in is the same contact. Rows for the same person are merged (tags united); an existing
contact keeps its answers, its language choice and its opt-out: importing never re-activates someone who said STOP.
"""

from __future__ import annotations

import csv
import io
import re
import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from service.campaigns import CampaignError, normalize_tag
from service.campaigns.timing import TimingError, check_zone
from service.inbox import PHONE_CHANNELS
from service.models import Contact
from service.privacy import InvalidAddress, normalize_phone

COLUMNS = ("phone", "telegram_chat_id", "language", "tags", "timezone", "channel")
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


@dataclass
class Report:
    rows: int = 0
    created: int = 0
    updated: int = 0
    merged: int = 0
    kept_opted_out: int = 0
    problems: list[tuple[int, str]] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)

    @property
    def imported(self) -> int:
        return self.created + self.updated


def count_rows(path: Path) -> int:
    """Data rows in the file (lines after the header), for a progress bar."""
    with open(path, "rb") as handle:
        return max(0, sum(1 for _ in handle) - 1)


def read(text: Iterable[str], default_region: str, extra_tags: Iterable[str] = (),
         report: Report | None = None) -> Iterator[Person | tuple[int, str]]:
    """Each data row as a Person, or (line, problem) when it cannot be used."""
    report = report if report is not None else Report()
    lines = iter(text)
    first = next(lines, "")
    delimiter = ";" if first.count(";") > first.count(",") else "\t" if "\t" in first else ","
    reader = csv.reader(_chain([first], lines), delimiter=delimiter)
    header = [h.strip().lower().replace(" ", "_") for h in next(reader, [])]
    if "phone" not in header and "telegram_chat_id" not in header:
        raise UnreadableFile("the first line must name the columns, with phone or telegram_chat_id among them "
                           f"(found: {', '.join(h for h in header if h) or 'nothing'})")
    report.ignored_columns = [h for h in header if h and h not in COLUMNS]
    extra = [normalize_tag(t) for t in extra_tags]
    for values in reader:
        if not any(v.strip() for v in values):
            continue
        report.rows += 1
        row = {name: (values[i].strip() if i < len(values) else "") for i, name in enumerate(header)}
        try:
            yield _person(reader.line_num, row, default_region, extra)
        except (InvalidAddress, CampaignError, TimingError) as error:
            yield reader.line_num, str(error)


def _person(line: int, row: dict[str, str], default_region: str, extra: list[str]) -> Person:
    phone, chat = row.get("phone", ""), row.get("telegram_chat_id", "")
    if phone and chat:
        raise InvalidAddress("both phone and telegram_chat_id: write one contact per row")
    if not phone and not chat:
        raise InvalidAddress("no phone or telegram_chat_id")
    if phone:
        channel = (row.get("channel") or "sms").lower()
        if channel not in PHONE_CHANNELS:
            raise InvalidAddress(f"channel {channel!r} is not sms or whatsapp")
        identity = normalize_phone(phone, default_region)
        reply_to = f"whatsapp:{identity}" if channel == "whatsapp" else identity
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
    return Person(line, channel, identity, reply_to, language, _unite(tags, extra), timezone)


def load(rt, people: Iterable[Person | tuple[int, str]], report: Report,
         progress: Callable[[int], Any] | None = None, dry_run: bool = False) -> Report:
    """Merge the file's people into the contacts, CHUNK rows per transaction."""
    merged: dict[tuple[str, str], Person] = {}
    for item in people:
        if progress is not None:
            progress(1)
        if isinstance(item, tuple):
            report.problems.append(item)
            continue
        key = (item.channel, rt.vault.hash(item.channel, item.identity))
        if key in merged:
            report.merged += 1
            _merge(merged[key], item)
        else:
            merged[key] = item
    if dry_run:
        return report
    items = list(merged.items())
    for start in range(0, len(items), CHUNK):
        _store(rt, dict(items[start:start + CHUNK]), report)
    return report


def _store(rt, people: dict[tuple[str, str], Person], report: Report) -> None:
    now = rt.now()
    vault = rt.vault
    with rt.sessions() as session, session.begin():
        dialect = session.get_bind().dialect.name
        statement = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[dialect]
        existing = _existing(session, people)
        new = [key for key in people if key not in existing]
        rows: list[dict[str, Any]] = []
        for channel, address_hash in new:
            person = people[(channel, address_hash)]
            rows.append({
                "public_id": secrets.token_hex(8), "channel": channel, "address_hash": address_hash,
                "address_enc": vault.encrypt(person.reply_to), "language": person.language, "tags": person.tags,
                "timezone": person.timezone, "opted_out": False, "unreachable": False,
                "phone_hash": vault.hash("phone", person.identity) if channel in PHONE_CHANNELS else None,
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
            contact.updated_at = now
            report.updated += 1
            if contact.opted_out:
                report.kept_opted_out += 1


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
