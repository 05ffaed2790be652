"""The Reloadly client against the fake: what each answer means for a record, and the configuration it needs."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from service.config import ConfigError, Settings
from service.incentives.providers import TopUp, make_provider
from tests.fake_reloadly import CLIENT_ID, FakeReloadly

ORDER = TopUp(key="rt-test-1", phone="+525512345678", amount=30.0, currency="MXN")


@pytest.fixture
def fake():
    server = FakeReloadly(late_seconds=0.5).start()
    yield server
    server.stop()


def provider(fake: FakeReloadly, **overrides):
    values = {"incentive_provider": "reloadly", **fake.settings(timeout=0.3), **overrides}
    return make_provider(SimpleNamespace(**values))


def test_a_top_up_in_pesos_to_a_mexican_number(fake):
    outcome = provider(fake).topup(ORDER)
    assert outcome.state == "paid" and outcome.transaction_id
    token = next(body for method, path, body in fake.requests if path == "/oauth/token")
    assert token == {"client_id": CLIENT_ID, "client_secret": "reloadly-test-secret",
                     "grant_type": "client_credentials", "audience": fake.url}
    [(_, _, body)] = [r for r in fake.requests if r[1] == "/topups"]
    assert body == {"operatorId": 1201, "amount": 30.0, "useLocalAmount": True, "customIdentifier": "rt-test-1",
                    "recipientPhone": {"countryCode": "MX", "number": "525512345678"}}


@pytest.mark.parametrize(
    ("mode", "state", "retry", "code"),
    [
        ("insufficient", "failed", True, "INSUFFICIENT_BALANCE"),
        ("error", "unknown", True, "HTTP 502"),
        ("error_after", "unknown", True, "HTTP 502"),
        ("lost", "unknown", True, "transport"),
        ("timeout", "unknown", True, "transport"),
        ("processing", "unknown", True, "PROCESSING"),
    ],
)
def test_what_each_answer_means(fake, mode, state, retry, code):
    fake.fail_next(mode)
    outcome = provider(fake).topup(ORDER)
    assert (outcome.state, outcome.retry, outcome.code) == (state, retry, code)


def test_a_reference_used_before_is_not_paid_again_and_the_lookup_tells(fake):
    client = provider(fake)
    assert client.topup(ORDER).state == "paid"
    again = client.topup(ORDER)
    assert again.state == "unknown" and again.code == "DUPLICATED_CUSTOM_IDENTIFIER"
    assert len(fake.paid()) == 1
    assert client.lookup(ORDER.key).state == "paid"
    assert client.lookup("rt-never-sent").state == "absent"


def test_a_top_up_still_processing_is_paid_when_looked_up(fake):
    fake.fail_next("processing")
    client = provider(fake)
    assert client.topup(ORDER).state == "unknown"
    assert client.lookup(ORDER.key).state == "paid"


def test_a_currency_the_operator_cannot_take_is_left_for_staff(fake):
    outcome = provider(fake).topup(TopUp(key="rt-us", phone="+14155552671", amount=30.0, currency="MXN"))
    assert (outcome.state, outcome.retry, outcome.code) == ("failed", False, "CURRENCY_MISMATCH")
    assert fake.topup_calls() == 0


def test_wrong_credentials_fail_without_paying(fake):
    outcome = provider(fake, reloadly_client_secret="wrong").topup(TopUp("rt-x", "+525512345678", 30.0, "MXN"))
    assert outcome.state == "failed" and outcome.retry
    assert fake.topup_calls() == 0


def test_an_unreachable_api_is_a_failure_before_sending_and_unknown_after(fake):
    client = provider(fake, reloadly_api_base="http://127.0.0.1:9")
    assert client.topup(ORDER).state == "failed", "the operator lookup failed: nothing was sent"
    assert client.lookup(ORDER.key).state == "unknown"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RETORNO_INCENTIVE_PROVIDER": "paypal"}, "unknown; use ledger or reloadly"),
        ({"RETORNO_INCENTIVE_PROVIDER": "reloadly"}, "needs RELOADLY_CLIENT_ID and RELOADLY_CLIENT_SECRET"),
        ({"RELOADLY_TIMEOUT": "soon"}, "RELOADLY_TIMEOUT=soon is not a number"),
        ({"RETORNO_INCENTIVE_MAX_ATTEMPTS": "0"}, "must be more than 0"),
    ],
)
def test_configuration_errors_say_what_to_fix(tmp_path, env, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_env({"RETORNO_DATA_DIR": str(tmp_path), **env})


def test_configuration_of_reloadly(tmp_path):
    settings = Settings.from_env({
        "RETORNO_DATA_DIR": str(tmp_path), "RETORNO_INCENTIVE_PROVIDER": "Reloadly", "RELOADLY_CLIENT_ID": "id",
        "RELOADLY_CLIENT_SECRET": "secret", "RELOADLY_API_BASE": "https://topups-sandbox.reloadly.com/",
        "RETORNO_INCENTIVE_RETRY_SECONDS": "5",
    })
    assert settings.incentive_provider == "reloadly"
    assert settings.reloadly_api_base == "https://topups-sandbox.reloadly.com"
    assert settings.incentive_retry_seconds == 5.0 and settings.incentive_max_attempts == 6
    assert Settings.from_env({"RETORNO_DATA_DIR": str(tmp_path)}).incentive_provider == "ledger"
