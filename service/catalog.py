"""The surveys this installation runs: loaded from YAML files, published as immutable versions in the database.

New sessions start on the version in the files; a session always continues on the version it started, which is
read back from the database even after the file has changed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service import audit
from service.models import SurveyVersion
from surveys.definition import Definition
from surveys.loader import SurveyError, bundled_files, load_text
from surveys.text import normalize

if TYPE_CHECKING:
    from service.runtime import Runtime

log = logging.getLogger(__name__)


class UnknownSurvey(LookupError):
    pass


class Catalog:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self._versions: dict[tuple[str, int], Definition] = {}
        self._current: dict[str, Definition] = {}
        self._sources: dict[tuple[str, int], str] = {}
        self._lock = threading.Lock()
        self._published = False
        self.problems: list[str] = []

    def files(self) -> list[Path]:
        folder = self.runtime.settings.surveys_dir
        extra = sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]) if folder else []
        return [*bundled_files(), *extra]

    def publish(self) -> None:
        """Load every survey file and store each new version; a changed file with an old version is refused."""
        with self._lock:
            loaded: dict[str, tuple[Definition, str]] = {}
            for path in self.files():
                source = path.read_text(encoding="utf-8")
                try:
                    definition = load_text(source, str(path))
                except SurveyError as error:
                    self.problems.append(str(error))
                    log.error("survey file %s is invalid and was not loaded:\n%s", path, error)
                    continue
                loaded[definition.id] = (definition, source)
            with self.runtime.sessions() as session:
                for definition, source in loaded.values():
                    self._publish_one(session, definition, source)
            self._published = True

    def _publish_one(self, session, definition: Definition, source: str) -> None:
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
            message = (
                f"survey {definition.id} version {definition.version} was edited without a new version number; "
                f"the published version {definition.version} stays in use. Raise `version` to publish the edit."
            )
            self.problems.append(message)
            log.error(message)
            definition = load_text(stored.source, f"{definition.id} v{definition.version}")
        self._versions[key] = definition
        self._current[definition.id] = definition

    def ensure_published(self) -> None:
        """Publish the files once per process; call it outside any open transaction."""
        if not self._published:
            self.publish()

    def current(self, survey_id: str, session: Session | None = None) -> Definition:
        """The version new respondents start on."""
        self.ensure_published()
        if survey_id in self._current:
            return self._current[survey_id]
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
        with self.runtime.sessions() as session:
            ids = session.scalars(select(SurveyVersion.survey_id).distinct()).all()
        return [self.current(survey_id) for survey_id in sorted(ids)]

    def for_keyword(self, text: str) -> Definition | None:
        """The survey whose start keyword is this whole message, if any."""
        said = normalize(text)
        if not said:
            return None
        self.ensure_published()
        for definition in self._current.values():
            if said in definition.start_set:
                return definition
        return None
