"""No respondent's number in clear, anywhere: the whole PostgreSQL database (pg_dump) and the logs at DEBUG,
after whole conversations on SMS, WhatsApp, Telegram (a shared and a typed payout number) and the console."""

from __future__ import annotations

import json

from tests.privacy.conftest import (
    CONSOLE,
    NUMBERS,
    SHARE_CHAT,
    SMS,
    TYPE_CHAT,
    converse_everywhere,
    debug_logs,
    find_numbers,
    pg_dump,
)


def test_no_number_in_the_database_dump_or_the_debug_logs(paying_pg, reloadly):
    h = paying_pg
    with debug_logs() as logs:
        converse_everywhere(h)
        from workers.incentives import tick

        tick()
        h.settle()
    # the conversations did happen, and were paid where they should be
    statuses = {r["channel"]: r["status"] for r in h.responses()}
    assert statuses == {"sms": "completed", "whatsapp": "completed", "telegram": "completed"}, statuses
    paid = {phone[-10:] for phone in reloadly.paid_per_phone()}
    assert {n for n in NUMBERS[:4]} == paid  # SMS, WhatsApp, Telegram shared and typed; never the console
    assert any("termina en 6666" in t for t in h.texts_to(str(SHARE_CHAT)))
    assert any("termina en 8888" in t for t in h.texts_to(str(TYPE_CHAT)))
    assert h.count("SELECT count(*) FROM contacts WHERE test") == 1

    dump = pg_dump(h.database_url)
    assert "COPY public.inbound_messages" in dump and "COPY public.incentives" in dump
    assert find_numbers(dump) == {}, json.dumps(find_numbers(dump), indent=1, ensure_ascii=False)

    written = logs.getvalue()
    assert "auto-detect/phone/[number]" in written, "urllib3 logged Reloadly's URLs at DEBUG, scrubbed"
    assert find_numbers(written) == {}, json.dumps(find_numbers(written), indent=1, ensure_ascii=False)
    assert h.settings.telegram_bot_token not in written and h.settings.reloadly_client_secret not in written

    # what staff asked for with contacts: the numbers are there, for them only
    addresses = {r["address"] for r in h.responses()}
    assert SMS in addresses
    console_rows = h.api("/api/v1/surveys/reintegracion-mx/responses?include_tests=true&include_contact=true")
    assert any(CONSOLE[-4:] in r["address"] for r in console_rows.get_json() if r["channel"] == "console")
