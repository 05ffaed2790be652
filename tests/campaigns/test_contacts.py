"""`retorno contacts import`: normalized numbers, bad rows by line, duplicates merged, opt-outs kept."""

from __future__ import annotations

import io

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from service.cli import main
from service.contacts import Report, load, read
from service.models import Contact

postgresql_only = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
CSV = """phone,language,tags,timezone,name
55 1234 5678,es,returnee,,Ana
+52 1 55 1234 5679,EN,returnee community,America/Tijuana,Beto
044 55 1234 5680,,,,
not a number,es,returnee,,
5512345678,,deported Returnee,,Ana again
"+52 (55) 1234-5681",francés,returnee,,
+525512345682,es,returnee,Mars/Olympus,
+525512345683,es,two words!,,
"""


def _import(harness, text: str, tags=("list-1",)) -> Report:
    report = Report()
    return load(harness.rt, read(io.StringIO(text), "MX", tags, report), report)


def _contacts(harness) -> dict[str, Contact]:
    with harness.rt.sessions() as session:
        rows = session.scalars(select(Contact)).all()
    return {harness.rt.vault.decrypt(c.address_enc): c for c in rows}


def test_import_normalizes_merges_and_reports_bad_rows_by_line(harness):
    report = _import(harness, CSV)
    assert report.rows == 8
    assert report.problems == [
        (5, "not a phone number ((1) The string supplied did not seem to be a phone number.)"),
        (7, "language 'francés' is not es or en"),
        (8, "'Mars/Olympus' is not a time zone; use a name like America/Mexico_City"),
        (9, "'words!' is not a tag: use letters, digits, _ - or . (no spaces), at most 64"),
    ]
    assert report.merged == 1 and report.created == 3 and report.ignored_columns == ["name"]
    contacts = _contacts(harness)
    assert sorted(contacts) == ["+525512345678", "+525512345679", "+525512345680"]
    ana = contacts["+525512345678"]
    assert ana.tags == ["returnee", "list-1", "deported"] and ana.language == "es" and ana.channel == "sms"
    beto = contacts["+525512345679"]
    assert beto.language == "en" and beto.timezone == "America/Tijuana"
    assert beto.tags == ["returnee", "community", "list-1"]
    assert contacts["+525512345680"].tags == ["list-1"]


def test_the_imported_contact_is_the_one_who_later_texts_in(harness):
    _import(harness, "phone,tags\n5512345678,returnee\n")
    [before] = _contacts(harness).values()
    harness.sms("+5215512345678", "Hola")
    harness.settle()
    [after] = _contacts(harness).values()
    assert after.id == before.id and after.tags == ["returnee", "list-1"]
    assert harness.count("SELECT count(*) FROM survey_sessions WHERE contact_id = :id", id=after.id) == 1


@postgresql_only
def test_importing_again_unites_tags_and_never_reactivates_an_opt_out(harness):
    harness.sms("+525512345678", "Hola")
    harness.sms("+525512345678", "STOP")
    harness.settle()
    with harness.rt.sessions() as session, session.begin():
        session.query(Contact).update({"language": "en"})
    report = _import(harness, "phone,language,tags\n+525512345678,es,returnee\n+525512345679,,returnee\n")
    assert (report.created, report.updated, report.kept_opted_out) == (1, 1, 1)
    stopped = _contacts(harness)["+525512345678"]
    assert stopped.opted_out and stopped.tags == ["returnee", "list-1"]
    assert stopped.language == "en", "the respondent's own choice of language wins over the list's"
    again = _import(harness, "phone,tags\n+525512345679,community\n", tags=())
    assert (again.created, again.updated) == (0, 1)
    assert _contacts(harness)["+525512345679"].tags == ["returnee", "list-1", "community"]


@postgresql_only
def test_whatsapp_and_telegram_rows(harness):
    report = _import(harness, "phone,telegram_chat_id,channel\n+525512345678,,whatsapp\n,700123,\n"
                              "+525512345679,700124,\n,12ab,\n,,\n")
    assert [line for line, _ in report.problems] == [4, 5], "empty rows are skipped"
    contacts = _contacts(harness)
    assert contacts["whatsapp:+525512345678"].channel == "whatsapp"
    assert contacts["700123"].channel == "telegram"
    harness.telegram_text(700123, "hola")
    harness.settle()
    assert harness.count("SELECT count(*) FROM contacts") == 2


def test_semicolons_and_excel_bom_are_read(sqlite_url, tmp_path, monkeypatch):
    path = tmp_path / "lista.csv"
    path.write_bytes("\ufeffTelefono;phone;Tags\nx;5512345678;returnee\n".encode())
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setenv("RETORNO_SECRET_KEY", "retorno-test-secret-key-0123456789")
    result = CliRunner().invoke(main, ["contacts", "import", str(path), "--tag", "pilot"])
    assert result.exit_code == 0, result.output
    assert "1 rows, imported 1" in result.stdout and "ignored columns (not stored): telefono" in result.stdout


def test_cli_lists_bad_lines_and_exits_1(sqlite_url, tmp_path, monkeypatch):
    path = tmp_path / "returnees.csv"
    path.write_text("phone,tags\n5512345678,returnee\n12,returnee\n5512345678,community\n")
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setenv("RETORNO_SECRET_KEY", "retorno-test-secret-key-0123456789")
    result = CliRunner().invoke(main, ["contacts", "import", str(path)])
    assert result.exit_code == 1
    assert "3 rows, imported 2" in result.stdout
    assert "1 new contacts" in result.stdout and "merged" in result.stdout
    assert "line 3: not a valid phone number for its country" in result.stdout
    assert "5512345678" not in result.stdout, "the summary does not repeat phone numbers"
    missing = tmp_path / "no-address.csv"
    missing.write_text("name,email\nAna,a@example.org\n")
    result = CliRunner().invoke(main, ["contacts", "import", str(missing)])
    assert result.exit_code == 1 and "phone or telegram_chat_id" in result.output
