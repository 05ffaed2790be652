"""`retorno contacts import`: normalized numbers, bad rows by line, duplicates merged, opt-outs kept."""

from __future__ import annotations

import io
import json

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
        (5, "not a phone number"),
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
    assert "1 row, imported 1" in result.stdout
    assert "columns read: phone, else Telefono as phone" in result.stdout, "Telefono is read when phone is empty"


def test_cli_lists_bad_lines_and_exits_1(sqlite_url, tmp_path, monkeypatch):
    path = tmp_path / "returnees.csv"
    path.write_text("phone,tags\n5512345678,returnee\n12,returnee\n5512345678,community\n")
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setenv("RETORNO_SECRET_KEY", "retorno-test-secret-key-0123456789")
    result = CliRunner().invoke(main, ["contacts", "import", str(path)])
    assert result.exit_code == 1
    assert "3 rows, imported 2" in result.stdout
    assert "1 new contact," in result.stdout and "1 row was the same person" in result.stdout
    assert "line 3: not a valid phone number for its country" in result.stdout
    assert "5512345678" not in result.stdout, "the summary does not repeat phone numbers"
    missing = tmp_path / "no-address.csv"
    missing.write_text("name,email\nAna,a@example.org\n")
    result = CliRunner().invoke(main, ["contacts", "import", str(missing)])
    assert result.exit_code == 1 and "phone or telegram_chat_id" in result.output


SPANISH = """Nombre,Teléfono,Celular,IDIOMA,Etiquetas,Zona horaria,canal,Correo
Ana,55 5555 0000,55 1234 5678,español,retornado,,,ana@example.org
Beto,55 1234 5679,,inglés,retornado comunidad,America/Tijuana,whatsapp,
Carla,,not a number,es,retornado,,,
Diana,,12,es,,,,
Eva,,+999 123 4567,es,,,,
Fer,,1234567890123456789,es,,,,
Gil,,+1 212 555 0123,en,retornado,,,
Hugo,,+52 1 55 1234 5678,es,deportado,,,
Iris,,55 1234 5680,francés,,,,
Juan,,55 1234 5681,es,dos palabras!,,,
Kike,,55 1234 5682,es,,Marte/Olimpo,,
Luis,,55 1234 5683,es,,,paloma,
Mar,,,es,,,,
"""


def test_spanish_headers_each_bad_row_kind_and_a_foreign_number(sqlite_url, tmp_path, monkeypatch):
    """Staff's own list: Spanish column names (any case, with or without accents), a mobile column preferred
    to a landline one, every kind of bad row in words staff understand, and a US number that a survey paying
    MXN cannot top up, imported with a warning."""
    path = tmp_path / "lista.csv"
    path.write_text(SPANISH, encoding="utf-8")
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setenv("RETORNO_SECRET_KEY", "retorno-test-secret-key-0123456789")
    result = CliRunner().invoke(main, ["contacts", "import", str(path), "--tag", "piloto"])
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "lista.csv: 13 rows, imported 4"
    assert lines[1] == ("  columns read: Celular, else Teléfono as phone; IDIOMA as language; Etiquetas as tags; "
                        "Zona horaria as timezone; canal as channel")
    assert "  3 new contacts, 0 already known (tags added)" in lines
    assert "  1 row was the same person as an earlier row and merged" in lines, "Hugo is Ana's mobile again"
    assert "  ignored columns (not stored): Nombre, Correo" in lines
    warned = lines.index("  1 row imported with a warning:")
    assert lines[warned + 1] == ("    line 8: a US number (+1): reintegracion-mx pays its credit in MXN, which cannot "
                                 "top up this number; imported, it can answer but not be paid")
    failed = lines.index("  9 rows not imported:")
    assert lines[failed + 1:] == [
        "    line 4: not a phone number",
        "    line 5: not a valid phone number for its country",
        "    line 6: not a phone number: no country has that code",
        "    line 7: too long for a phone number",
        "    line 10: language 'francés' is not es or en",
        "    line 11: 'palabras!' is not a tag: use letters, digits, _ - or . (no spaces), at most 64",
        "    line 12: 'Marte/Olimpo' is not a time zone; use a name like America/Mexico_City",
        "    line 13: channel 'paloma' is not sms, whatsapp or voice",
        "    line 14: no phone or telegram_chat_id",
    ]
    assert "(1)" not in result.stdout and "supplied" not in result.stdout, "no library text in a reason"
    for number in ("5512345678", "1234 5678", "2125550123", "555 0123"):
        assert number not in result.stdout, "the report never repeats a phone number"
    runtime = _cli_runtime()
    with runtime.sessions() as session:
        rows = session.scalars(select(Contact)).all()
        contacts = {runtime.vault.decrypt(c.address_enc): c for c in rows}
    assert sorted(contacts) == ["+12125550123", "+525512345678", "whatsapp:+525512345679"]
    ana = contacts["+525512345678"]
    assert ana.language == "es" and ana.tags == ["retornado", "piloto", "deportado"]
    beto = contacts["whatsapp:+525512345679"]
    assert beto.language == "en" and beto.timezone == "America/Tijuana" and beto.channel == "whatsapp"


def _cli_runtime():
    from service import runtime as runtimes
    from service.config import Settings

    return runtimes.build(Settings.from_env())


def test_a_file_with_two_language_columns_is_refused_with_one_line(sqlite_url, tmp_path, monkeypatch):
    path = tmp_path / "dos.csv"
    path.write_text("telefono,idioma,Language\n5512345678,es,en\n", encoding="utf-8")
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setenv("RETORNO_SECRET_KEY", "retorno-test-secret-key-0123456789")
    result = CliRunner().invoke(main, ["contacts", "import", str(path)])
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == (
        f"Error: {path}: 'idioma' and 'Language' are both the language column: keep one")


def test_a_survey_without_credit_warns_about_nothing_and_an_unknown_one_is_an_error(sqlite_url, tmp_path,
                                                                                   monkeypatch):
    path = tmp_path / "us.csv"
    path.write_text("phone\n+1 212 555 0123\n", encoding="utf-8")
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setenv("RETORNO_SECRET_KEY", "retorno-test-secret-key-0123456789")
    monkeypatch.setenv("RETORNO_DEFAULT_SURVEY", "no-such-survey")
    result = CliRunner().invoke(main, ["contacts", "import", str(path), "--dry-run"])
    assert result.exit_code == 0 and "warning" not in result.stdout, result.output
    result = CliRunner().invoke(main, ["contacts", "import", str(path), "--survey", "nope"])
    assert result.exit_code == 1 and "there is no survey 'nope' (known: reintegracion-mx)" in result.output


def test_a_long_import_shows_progress_on_a_terminal(sqlite_url, tmp_path):
    """On a terminal, reading and saving each have a progress bar (click draws none into a pipe or a log)."""
    import os
    import pty
    import subprocess
    import sys
    import threading

    path = tmp_path / "many.csv"
    path.write_text("telefono\n" + "".join(f"+5255{10000000 + i:08d}\n" for i in range(1200)), encoding="utf-8")
    env = {**os.environ, "DATABASE_URL": sqlite_url, "RETORNO_SECRET_KEY": "retorno-test-secret-key-0123456789",
           "COLUMNS": "100"}
    terminal, attached = pty.openpty()
    shown: list[bytes] = []

    def watch() -> None:
        while True:
            try:
                chunk = os.read(terminal, 65536)
            except OSError:  # the other side closed
                return
            if not chunk:
                return
            shown.append(chunk)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    process = subprocess.run([sys.executable, "-m", "service.cli", "contacts", "import", str(path)],
                             stdout=subprocess.PIPE, stderr=attached, env=env, timeout=120, text=True)
    os.close(attached)
    watcher.join(timeout=10)
    os.close(terminal)
    screen = b"".join(shown).decode(errors="replace")
    assert process.returncode == 0, screen
    assert "Reading many.csv" in screen and "Saving contacts" in screen and "100%" in screen, screen
    assert process.stdout.startswith("many.csv: 1,200 rows, imported 1,200\n")


def test_contacts_list_counts_by_tag_channel_and_language_and_never_shows_a_number(harness, monkeypatch):
    text = ("phone,telegram_chat_id,language,tags,channel\n+525512345678,,es,retornado piloto,\n"
            "+525512345679,,en,retornado,whatsapp\n,700123,,comunidad,\n+525512345680,,es,retornado,\n")
    _import(harness, text, tags=())
    with harness.rt.sessions() as session, session.begin():
        session.query(Contact).filter(Contact.channel == "telegram").update({"opted_out": True})
    monkeypatch.setenv("DATABASE_URL", harness.settings.database_url)
    monkeypatch.setenv("RETORNO_SECRET_KEY", harness.settings.secret_key)
    result = CliRunner().invoke(main, ["contacts", "list"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "4 contacts: 3 can be invited, 1 opted out, 0 unreachable",
        "  by channel:  sms 2, telegram 1, whatsapp 1",
        "  by language: es 2, en 1, not set 1",
        "  tag         contacts  can be invited  opted out",
        "  retornado          3               3          0",
        "  comunidad          1               0          1",
        "  piloto             1               1          0",
    ]
    for secret in ("5512345678", "700123", "+52"):
        assert secret not in result.stdout
    as_json = json.loads(CliRunner().invoke(main, ["contacts", "list", "--json"]).stdout)
    assert as_json["total"] == 4 and as_json["invitable"] == 3
    assert as_json["tags"]["comunidad"] == {"contacts": 1, "invitable": 0, "opted_out": 1}


OPT_IN = """celular,canal,Consentimiento,Origen consentimiento
5512345678,whatsapp,2026-01-15 formulario de registro,
5512345679,whatsapp,15/01/2026,feria de empleo Tijuana
5512345680,whatsapp,sí,
5512345681,whatsapp,no,
5512345682,whatsapp,,
5512345683,whatsapp,mañana,
5512345684,whatsapp,31/02/2026,
5512345685,whatsapp,2099-01-01,
5512345686,whatsapp,2026-01-10T09:30 | llamada,
"""


def test_opt_in_with_its_date_and_source_spanish_headers_and_bad_values_by_line(harness):
    report = _import(harness, OPT_IN)
    assert report.problems == [
        (7, "opt_in 'mañana' is not a date (YYYY-MM-DD or DD/MM/YYYY, then its source) nor sí/no"),
        (8, "opt_in '31/02/2026' is not a real date"),
        (9, "opt_in '2099-01-01' is in the future"),
    ]
    assert report.opt_ins == 4 and report.columns["opt_in"] == ["Consentimiento"]
    contacts = {address.removeprefix("whatsapp:+52"): c for address, c in _contacts(harness).items()}
    assert (contacts["5512345678"].opt_in_at.date().isoformat(), contacts["5512345678"].opt_in_source) == (
        "2026-01-15", "formulario de registro")
    assert (contacts["5512345679"].opt_in_at.date().isoformat(), contacts["5512345679"].opt_in_source) == (
        "2026-01-15", "feria de empleo Tijuana")
    assert contacts["5512345680"].opt_in_at is not None and contacts["5512345680"].opt_in_source is None
    assert contacts["5512345681"].opt_in_at is None and contacts["5512345682"].opt_in_at is None
    assert contacts["5512345686"].opt_in_source == "llamada"


def test_a_newer_opt_in_replaces_the_old_one_and_an_older_one_does_not(harness):
    _import(harness, "phone,channel,opt_in\n5512345678,whatsapp,2026-01-15 albergue\n")
    _import(harness, "phone,channel,opt_in\n5512345678,whatsapp,2025-06-01 lista vieja\n")
    [contact] = _contacts(harness).values()
    assert contact.opt_in_source == "albergue"
    _import(harness, "phone,channel,opt_in,opt_in_source\n5512345678,whatsapp,2026-02-01,feria\n")
    [contact] = _contacts(harness).values()
    assert (contact.opt_in_at.date().isoformat(), contact.opt_in_source) == ("2026-02-01", "feria")


def test_the_import_summary_counts_opt_ins(sqlite_url, tmp_path, monkeypatch):
    path = tmp_path / "whatsapp.csv"
    path.write_text("celular,canal,consentimiento\n5512345678,whatsapp,2026-01-15 registro\n5512345679,whatsapp,\n")
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setenv("RETORNO_SECRET_KEY", "retorno-test-secret-key-0123456789")
    result = CliRunner().invoke(main, ["contacts", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert "1 person with an opt-in to WhatsApp messages" in result.stdout
