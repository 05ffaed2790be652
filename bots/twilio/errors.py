"""What Twilio's error codes mean for Retorno, and what it does about each (SMS and WhatsApp).

One table for both places a code arrives: the answer to the create-message request, and a delivery status
callback later (most WhatsApp failures come that way, after Twilio accepted the message). Meanings follow
Twilio's error dictionary (twilio.com/docs/api/errors/NNNNN) and its WhatsApp error-code mapping.

Actions:
- `retry`: the message waits and goes again (rate limits); `retry_after` seconds at least.
- `unreachable`: this address will not get messages; the contact is marked unreachable, nothing is retried.
- `opted_out`: the person told WhatsApp they want no messages from the business: the contact is opted out.
- `template`: WhatsApp's 24-hour window was closed; what starts a conversation must go as a template.
- `failed`: this message failed (often a configuration problem: the message says which); the contact stays.

`fallback`: WhatsApp will not carry it but the number may still get an SMS (campaigns with `--fallback sms`).
"""

from __future__ import annotations

from dataclasses import dataclass

RETRY, UNREACHABLE, OPTED_OUT, TEMPLATE, FAILED = "retry", "unreachable", "opted_out", "template", "failed"


@dataclass(frozen=True)
class TwilioError:
    code: int
    meaning: str
    action: str = FAILED
    fallback: bool = False
    retry_after: float | None = None

    @property
    def outcome(self) -> str:
        """What Retorno did, in words (for the funnel)."""
        return {
            RETRY: "tried again later",
            UNREACHABLE: "contact marked unreachable",
            OPTED_OUT: "contact marked opted out",
            TEMPLATE: "sent again as a template",
            FAILED: "not sent",
        }[self.action]


ERRORS: dict[int, TwilioError] = {e.code: e for e in (
    TwilioError(20429, "too many requests to Twilio at once", RETRY),
    TwilioError(21211, "the 'To' number is not a valid phone number", UNREACHABLE),
    TwilioError(21408, "sending to this country is not enabled on the Twilio account (Geo permissions)"),
    TwilioError(21610, "the recipient unsubscribed from this number (replied STOP)", UNREACHABLE),
    TwilioError(21612, "Twilio cannot route from this sender to the 'To' number"),
    TwilioError(21614, "the 'To' number is not a mobile number", UNREACHABLE),
    TwilioError(21635, "the 'To' number is a landline", UNREACHABLE),
    TwilioError(21654, "ContentVariables sent without ContentSid"),
    TwilioError(21655, "the ContentSid is not a valid Content SID (HX...)"),
    TwilioError(21656, "the ContentVariables are not valid (a value is empty, or not JSON)"),
    TwilioError(30003, "the handset is unreachable", UNREACHABLE),
    TwilioError(30005, "the number is unknown or no longer exists", UNREACHABLE),
    TwilioError(30006, "a landline or an unreachable carrier", UNREACHABLE),
    TwilioError(30007, "the carrier filtered the message"),
    TwilioError(30008, "the carrier could not deliver it (unknown error)"),
    TwilioError(63001, "WhatsApp refused Twilio's credentials for this sender (check the WhatsApp sender)"),
    TwilioError(63003, "the number is not on WhatsApp, or no longer", UNREACHABLE, fallback=True),
    TwilioError(63005, "WhatsApp did not accept the content (for a template: not approved, or a wrong variable)"),
    TwilioError(63007, "the 'From' number is not a WhatsApp sender of this account (TWILIO_FROM_NUMBER)"),
    TwilioError(63013, "the message breaks WhatsApp's policy"),
    TwilioError(63016, "outside WhatsApp's 24-hour window: free text needs the person to write first",
                TEMPLATE),
    TwilioError(63017, "more than the account's messages per second", RETRY, retry_after=60),
    TwilioError(63018, "the WhatsApp sender's messaging limit was reached (its daily tier)", RETRY,
                retry_after=3600),
    TwilioError(63021, "WhatsApp refused the content (too long with its variables, or not supported)"),
    TwilioError(63024, "not a valid WhatsApp recipient", UNREACHABLE, fallback=True),
    TwilioError(63027, "the template does not exist in WhatsApp for this language"),
    TwilioError(63028, "the number of variables does not match the template"),
    TwilioError(63030, "a parameter this WhatsApp message type does not support"),
    TwilioError(63032, "the person opted out of this business's messages on WhatsApp", OPTED_OUT),
    TwilioError(63038, "the account's daily message limit was reached", RETRY, retry_after=3600),
    TwilioError(63049, "Meta chose not to deliver this marketing template (per-person marketing limits)",
                fallback=True),
)}


def lookup(code: object) -> TwilioError | None:
    """The table's entry for an error code (an int or its text), or None."""
    try:
        return ERRORS.get(int(str(code).strip()))
    except (TypeError, ValueError):
        return None


def meaning(code: object) -> str:
    """What an error code means, for people (the code itself when it is not in the table)."""
    found = lookup(code)
    return found.meaning if found else f"Twilio error {code} (see twilio.com/docs/api/errors/{code})"


def codes(action: str) -> frozenset[str]:
    """The codes (as text, as status callbacks send them) whose action is `action`."""
    return frozenset(str(e.code) for e in ERRORS.values() if e.action == action)
