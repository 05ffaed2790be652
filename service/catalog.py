"""The surveys this installation runs: loaded from YAML files, published as immutable versions in the database.

New sessions start on the version in the files; a session always continues on the version it started, which is
read back from the database even after the file has changed.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from ruamel.yaml import YAML
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service import audit
from service.models import SurveyVersion
from surveys.definition import Definition
from surveys.loader import SurveyError, bundled_files, load_text
from surveys.schema import SURVEY_ID_PATTERN
from surveys.text import normalize

if TYPE_CHECKING:
    from service.runtime import Runtime

log = logging.getLogger(__name__)


class UnknownSurvey(LookupError):
    pass


_SURVEY_ID = re.compile(SURVEY_ID_PATTERN, re.ASCII)
MAX_VERSION = 2**31 - 1
REFRESH_SECONDS = 10.0
"""How often a process looks for versions published by another (the staff console publishes without a restart)."""


def is_survey_id(value: str) -> bool:
    """Whether `value` has the form of a survey id (so it may be looked up at all)."""
    return _SURVEY_ID.fullmatch(value) is not None


class Catalog:
    def __init__(self, runtime: Runtime):
        """`runtime` is the one that owns this catalog (`Runtime.catalog`); only its settings, sessions and clock
        are used."""
        self.runtime = runtime
        self._versions: dict[tuple[str, int], Definition] = {}
        self._current: dict[str, Definition] = {}
        self._lock = threading.Lock()
        self._published = False
        self._checked = 0.0
        self.problems: list[str] = []
        self.refused: list[str] = []
        """`FILE:LINE: message` for each problem of a survey file not loaded, and each file edited without a new
        version: the service runs on what was published before, and `retorno run` or `worker` refuse to start."""

    def files(self) -> list[Path]:
        folder = self.runtime.settings.surveys_dir
        extra = sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]) if folder else []
        return [*bundled_files(), *extra]

    def publish(self) -> None:
        """Load every survey file and store each new version; an invalid file, or a changed file with an old version,
        is refused (see `refused`) and what was published before stays in use."""
        with self._lock:
            self.refused = []
            loaded: dict[str, tuple[Definition, str, Path]] = {}
            for path in self.files():
                source = path.read_text(encoding="utf-8")
                try:
                    definition = load_text(source, str(path))
                except SurveyError as error:
                    self.problems.append(str(error))
                    self.refused += [f"{path}:{problem.line}: {problem.message}" for problem in error.problems]
                    continue
                loaded[definition.id] = (definition, source, path)
            with self.runtime.sessions() as session:
                for definition, source, path in loaded.values():
                    self._publish_one(session, definition, source, path)
            self._published = True

    def _publish_one(self, session, definition: Definition, source: str, path: Path) -> None:
        key = (definition.id, definition.version)
        stored = session.get(SurveyVersion, key)
        if stored is None:
            session.add(
                SurveyVersion(
                    survey_id=definition.id,
                    version=definition.version,
                    digest=definition.digest,
                    source=source,
                    definition=definition.normalized(),
                )
            )
            audit.add(session, self.runtime.now(), "system", "survey.published",
                      f"{definition.id} v{definition.version}", digest=definition.digest)
            try:
                session.commit()
            except IntegrityError:
                session.rollback()
                stored = session.get(SurveyVersion, key)
        if stored is not None and stored.digest != definition.digest:
            changes = edits(stored.source, source)
            if changes:
                message = (
                    f"{path}:{version_line(source)}: survey {definition.id} was edited ({changes}) but still says "
                    f"version {definition.version}, which is published as it was: raise `version` to "
                    f"{definition.version + 1} to publish the edit, or undo it"
                )
                self.problems.append(message)
                self.refused.append(message)
            definition = load_text(stored.source, f"{definition.id} v{definition.version}")
        self._versions[key] = definition
        newest = session.scalar(select(func.max(SurveyVersion.version)).where(SurveyVersion.survey_id == definition.id))
        if newest is not None and newest > definition.version:  # published later from the staff console
            newer = session.get(SurveyVersion, (definition.id, newest))
            definition = load_text(newer.source, f"{definition.id} v{newest}")
            self._versions[(definition.id, newest)] = definition
        self._current[definition.id] = definition

    def publish_source(self, source: str, actor: str) -> Definition:
        """Publish a survey's YAML (from the staff console) as its next version, whatever `version` it says;
        SurveyError (every problem with its line) when it is not a valid survey. New sessions start on it."""
        self.ensure_published()
        definition = load_text(source)
        with self._lock, self.runtime.sessions() as session, session.begin():
            newest = session.scalar(
                select(func.max(SurveyVersion.version)).where(SurveyVersion.survey_id == definition.id)) or 0
            version = max(newest + 1, definition.version)
            source = with_version(source, version)
            definition = load_text(source, f"{definition.id} v{version}")
            session.add(SurveyVersion(survey_id=definition.id, version=version, digest=definition.digest,
                                      source=source, definition=definition.normalized()))
            audit.add(session, self.runtime.now(), actor, "survey.published", f"{definition.id} v{version}",
                      digest=definition.digest, previous=newest or None)
        self._versions[(definition.id, version)] = definition
        self._current[definition.id] = definition
        return definition

    def versions(self) -> dict[str, list[int]]:
        """Every published version of every survey, newest first."""
        self.ensure_published()
        with self.runtime.sessions() as session:
            rows = session.execute(select(SurveyVersion.survey_id, SurveyVersion.version)
                                   .order_by(SurveyVersion.survey_id, SurveyVersion.version.desc())).all()
        found: dict[str, list[int]] = {}
        for survey_id, version in rows:
            found.setdefault(survey_id, []).append(version)
        return found

    def source(self, survey_id: str, version: int) -> str:
        """The YAML a version was published from; UnknownSurvey when there is none."""
        with self.runtime.sessions() as session:
            stored = session.get(SurveyVersion, (survey_id, version)) if is_survey_id(survey_id) else None
        if stored is None:
            raise UnknownSurvey(f"{survey_id} v{version}")
        return stored.source

    def known(self) -> list[str]:
        """The ids of every survey published in the files or the database."""
        self.ensure_published()
        with self.runtime.sessions() as session:
            stored = session.scalars(select(SurveyVersion.survey_id).distinct()).all()
        return sorted({*self._current, *stored})

    def ensure_published(self) -> None:
        """Publish the files once per process; call it outside any open transaction."""
        if not self._published:
            self.publish()
            for problem in self.refused:
                log.error("survey not published: %s", problem)

    def refresh(self, session: Session | None = None, force: bool = False) -> None:
        """Take up the versions another process published (the staff console) since this one last looked; at most
        once every REFRESH_SECONDS unless `force`."""
        moment = time.monotonic()
        if not force and moment - self._checked < REFRESH_SECONDS:
            return
        self._checked = moment
        with self._reading(session) as reader:
            newest = reader.execute(select(SurveyVersion.survey_id, func.max(SurveyVersion.version))
                                    .group_by(SurveyVersion.survey_id)).all()
            for survey_id, version in newest:
                known = self._current.get(survey_id)
                if known is not None and version > known.version:
                    self._current[survey_id] = self.get(survey_id, version, reader)

    def current(self, survey_id: str, session: Session | None = None) -> Definition:
        """The version new respondents start on."""
        self.ensure_published()
        self.refresh(session)
        if survey_id in self._current:
            return self._current[survey_id]
        if not is_survey_id(survey_id):
            raise UnknownSurvey(survey_id)
        with self._reading(session) as reader:
            version = reader.scalar(
                select(SurveyVersion.version)
                .where(SurveyVersion.survey_id == survey_id)
                .order_by(SurveyVersion.version.desc())
                .limit(1)
            )
        if version is None:
            raise UnknownSurvey(survey_id)
        return self.get(survey_id, version, session)

    def get(self, survey_id: str, version: int, session: Session | None = None) -> Definition:
        """One exact version, as it was published (read within `session` when one is open)."""
        key = (survey_id, version)
        found = self._versions.get(key)
        if found is not None:
            return found
        if not is_survey_id(survey_id) or not 1 <= version <= MAX_VERSION:
            raise UnknownSurvey(f"{survey_id} v{version}")
        with self._reading(session) as reader:
            stored = reader.get(SurveyVersion, key)
            if stored is None:
                raise UnknownSurvey(f"{survey_id} v{version}")
            definition = load_text(stored.source, f"{survey_id} v{version}")
        with self._lock:
            self._versions[key] = definition
        return definition

    @contextmanager
    def _reading(self, session: Session | None) -> Iterator[Session]:
        if session is not None:
            yield session
        else:
            with self.runtime.sessions() as own:
                yield own

    def default(self, session: Session | None = None) -> Definition:
        return self.current(self.runtime.settings.default_survey, session)

    def all_current(self) -> list[Definition]:
        self.ensure_published()
        self.refresh()
        with self.runtime.sessions() as session:
            ids = session.scalars(select(SurveyVersion.survey_id).distinct()).all()
        return [self.current(survey_id) for survey_id in sorted(ids)]

    def for_keyword(self, text: str, session: Session | None = None) -> Definition | None:
        """The survey whose start keyword is this whole message, if any (read within `session` when one is open:
        on SQLite a second session would wait for the first)."""
        said = normalize(text)
        if not said:
            return None
        self.ensure_published()
        self.refresh(session)
        for definition in self._current.values():
            if said in definition.start_set:
                return definition
        return None


_VERSION_KEY = re.compile(r"^version\s*:", re.MULTILINE)


def version_line(source: str) -> int:
    """The line of a survey file's top-level `version` key (1 when it cannot be found)."""
    found = _VERSION_KEY.search(source)
    return source.count("\n", 0, found.start()) + 1 if found else 1


def with_version(source: str, version: int) -> str:
    """The source with its top-level `version` set to `version` (added after `id` when it has none)."""
    if _VERSION_KEY.search(source):
        return re.sub(r"^version\s*:.*$", f"version: {version}", source, count=1, flags=re.MULTILINE)
    return re.sub(r"^(id\s*:.*)$", rf"\1\nversion: {version}", source, count=1, flags=re.MULTILINE)


def edits(published: str, source: str, most: int = 4) -> str:
    """What a survey file changes in its published source, in a few words ('' when they mean the same)."""
    yaml = YAML(typ="safe", pure=True)
    before, after = yaml.load(published) or {}, yaml.load(source) or {}
    changed = [key for key in sorted(set(before) | set(after))
               if key != "questions" and before.get(key) != after.get(key)]
    old = {q.get("id"): q for q in before.get("questions") or [] if isinstance(q, dict)}
    new = {q.get("id"): q for q in after.get("questions") or [] if isinstance(q, dict)}
    for question_id, question in new.items():
        if question_id not in old:
            changed.append(f"question {question_id} added")
        elif question != old[question_id]:
            was = old[question_id]
            keys = sorted(k for k in set(question) | set(was) if question.get(k) != was.get(k))
            changed.append(f"question {question_id} {'/'.join(map(str, keys))}")
    changed += [f"question {question_id} removed" for question_id in old if question_id not in new]
    if not changed and list(old) != list(new):
        changed.append("question order")
    if len(changed) > most:
        changed[most:] = [f"{len(changed) - most} more"]
    return ", ".join(changed)
