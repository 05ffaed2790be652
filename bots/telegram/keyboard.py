"""Survey choices as Telegram inline keyboards: pressing a button sends its `callback_data` back."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from surveys.engine import Reply, ReplyChoice

MAX_CALLBACK_DATA = 64
"""Bytes: Telegram's limit for callback_data."""
SHORT_LABEL = 12
"""Characters: when every label is this short, buttons go two per row."""


def inline_keyboard(choices: Sequence[ReplyChoice]) -> dict[str, Any]:
    """An InlineKeyboardMarkup with one button per choice; ValueError when a choice cannot be a button."""
    buttons = [_button(choice) for choice in choices]
    if not buttons:
        raise ValueError("an inline keyboard needs at least one choice")
    per_row = 2 if all(len(b["text"]) <= SHORT_LABEL for b in buttons) else 1
    rows = [buttons[i:i + per_row] for i in range(0, len(buttons), per_row)]
    return {"inline_keyboard": rows}


def render(reply: Reply) -> tuple[str, dict[str, Any]]:
    """(text, payload): choices become buttons, except for multiple-choice questions, answered by typing numbers."""
    if reply.choices and not reply.multi:
        return reply.text, {"reply_markup": inline_keyboard(reply.choices)}
    if reply.contact_button:
        return reply.text, {"reply_markup": share_number_keyboard(reply.contact_button)}
    if reply.close_keyboard:
        return reply.plain(), {"reply_markup": {"remove_keyboard": True}}
    return reply.plain(), {}


def share_number_keyboard(label: str) -> dict[str, Any]:
    """A one-button ReplyKeyboardMarkup that shares the respondent's own phone number as a contact."""
    return {
        "keyboard": [[{"text": label, "request_contact": True}]],
        "one_time_keyboard": True,
        "resize_keyboard": True,
    }


def _button(choice: ReplyChoice) -> dict[str, str]:
    data = choice.data
    if not isinstance(data, str) or not data:
        raise ValueError(f"choice {choice.value!r} has no callback data")
    if len(data.encode("utf-8")) > MAX_CALLBACK_DATA:
        raise ValueError(
            f"callback data {data!r} is longer than {MAX_CALLBACK_DATA} bytes; shorten the question id or value"
        )
    label = (choice.label or "").strip() or str(choice.value)
    return {"text": label, "callback_data": data}
