"""Bad input to the simulator and the console's forms: a clear 4xx, never a 5xx."""

from __future__ import annotations

import io
import random
import re

SIMULATE = "/api/v1/surveys/reintegracion-mx/simulate"
BODIES = [
    (None, 400), ([], 400), ("x", 400), ({"messages": "hola"}, 400), ({"messages": [1, 2]}, 400),
    ({"messages": [{"button": "consent=yes"}]}, 200),
    ({"messages": [{"button": "zzz=1"}, {"button": "=="}, {"button": "consent="}]}, 200),
    ({"messages": ["hola", {"button": "age_band=under_18"}, "1"], "channel": "telegram"}, 200),
    ({"messages": ["\U0001F600" * 500, "STOP", "BORRAR", "BORRAR", "hola"]}, 200),
    ({"messages": ["hola"], "version": "99999999999"}, 400), ({"messages": ["hola"], "version": "999"}, 404),
    ({"messages": ["hola"], "version": "²"}, 400), ({"messages": ["hola"], "version": -1}, 400),
    ({"messages": ["hola"], "version": "abc"}, 400), ({"messages": ["hola"], "language": ["es"]}, 400),
    ({"messages": ["hola"], "language": "fr"}, 400), ({"messages": ["x"] * 201}, 400),
    ({"messages": ["hola"], "channel": "fax"}, 400), ({"messages": [{"text": None}]}, 400),
]
WORDS = ["hola", "1", "2", "si", "no", "Jalisco", "AYUDA", "SALTAR", "STOP", "ALTA", "BORRAR", "EN", "ES", "99", ""]


def test_the_simulate_endpoint_answers_bad_input_with_a_4xx(console):
    headers = {"Authorization": f"Bearer {console.h.staff_token}"}
    for body, status in BODIES:
        response = console.h.client.post(SIMULATE, json=body, headers=headers)
        assert response.status_code == status, (body, response.get_data(as_text=True))
        if status >= 400:
            assert response.get_json()["error"]["message"]
    chance = random.Random(20)
    for _ in range(30):  # any conversation at all: the engine never breaks
        messages = [chance.choice(WORDS) for _ in range(chance.randint(1, 25))]
        response = console.h.client.post(SIMULATE, headers=headers,
                                         json={"messages": messages, "channel": chance.choice(["sms", "telegram"])})
        assert response.status_code == 200, (messages, response.get_data(as_text=True))


def test_the_console_forms_answer_bad_input_with_a_4xx(console):
    h = console.h
    client = h.app.test_client()
    client.post("/staff/login", data={"token": h.staff_token})
    csrf = re.search(r'name="csrf-token" content="([0-9a-f]+)"', client.get("/staff").get_data(as_text=True)).group(1)
    draft = client.post("/staff/simulator/run", json={"source": "id: [", "messages": ["hola"]},
                        headers={"X-CSRF-Token": csrf})
    assert draft.status_code == 400 and "(line 1:" in draft.get_json()["error"]["message"]
    listed = client.post("/staff/simulator/run", json=["hola"], headers={"X-CSRF-Token": csrf})
    assert listed.status_code == 400
    gets = {"/staff/surveys/nope/diff": 404, "/staff/surveys/reintegracion-mx/diff?from=999&to=abc": 404,
            "/staff/campaigns/999": 404, "/staff/campaigns/999/funnel.json": 404,
            "/staff/simulator?version=²": 200, "/staff/campaigns/99999999999999999999": 404}
    for path, status in gets.items():
        assert client.get(path).status_code == status, path
    posts = [
        ("/staff/simulator", {"source": "id: ["}, 200),
        ("/staff/campaigns/999/start", {}, 404),
        ("/staff/campaigns/1/explode", {}, 404),
        ("/staff/campaigns", {"tag": "bad tag!", "survey": "x", "wave": "abc"}, 400),
        ("/staff/campaigns", {"tag": "ok", "survey": "reintegracion-mx", "timezone": "Mars/Olympus"}, 400),
        ("/staff/contacts/lookup", {}, 400),
        ("/staff/contacts/lookup", {"phone": "abc"}, 400),
        ("/staff/contacts/erase", {"respondent": "nobody", "confirm": "ERASE"}, 404),
        ("/staff/contacts/erase", {"respondent": "nobody", "confirm": "yes"}, 400),
        ("/staff/tokens", {"role": "god", "name": "x"}, 400),
        ("/staff/tokens", {"role": "analyst", "name": "x", "expires": "soon"}, 400),
        ("/staff/tokens/99999/revoke", {}, 400),
        ("/staff/surveys/check", {"source": "\x00\xff binary"}, 422),
        ("/staff/surveys/check", {"source": ""}, 400),
        ("/staff/surveys/publish", {"source": "id: x"}, 422),
        ("/staff/contacts/import", {"file": (io.BytesIO(b"\xff\xfe\x00garbage"), "x.csv")}, 400),
        ("/staff/contacts/import", {}, 400),
        ("/staff/incentives/paid", {"file": (io.BytesIO(b"a,b\n1,2\n"), "x.csv")}, 400),
    ]
    for path, form, status in posts:
        response = client.post(path, data={**form, "csrf": csrf})
        assert response.status_code == status, (path, form, response.status_code)


def test_a_contact_list_larger_than_a_megabyte_is_taken(console):
    h = console.h
    client = h.app.test_client()
    client.post("/staff/login", data={"token": h.staff_token})
    csrf = re.search(r'name="csrf-token" content="([0-9a-f]+)"', client.get("/staff").get_data(as_text=True)).group(1)
    rows = "".join(f"+5255{40000000 + i:08d},es,{'x' * 300}\n" for i in range(4_000))
    data = ("phone,language,note\n" + rows).encode()
    assert len(data) > 1024 * 1024
    response = client.post("/staff/contacts/import", data={"csrf": csrf, "file": (io.BytesIO(data), "big.csv")})
    assert response.status_code == 200, response.status_code
    assert "4000 filas" in response.get_data(as_text=True) or "4000 rows" in response.get_data(as_text=True)
