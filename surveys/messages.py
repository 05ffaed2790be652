"""The engine's own messages and keywords, in Spanish and English; a survey may override any message.

Messages are short on purpose: one SMS segment where possible. Placeholders in braces are filled by the engine.
"""

from __future__ import annotations

DEFAULT_MESSAGES: dict[str, dict[str, str]] = {
    "declined": {
        "es": "Entendido, gracias. No le enviaremos más preguntas.",
        "en": "Understood, thank you. We will not send you more questions.",
    },
    "completed": {
        "es": "¡Gracias! Terminó la encuesta.",
        "en": "Thank you! You finished the survey.",
    },
    "completed_incentive": {
        "es": "¡Gracias! Terminó la encuesta. Pronto recibirá su saldo de {amount} {currency}.",
        "en": "Thank you! You finished the survey. You will soon get your {amount} {currency} credit.",
    },
    "completed_no_credit": {
        "es": "¡Gracias! Terminó la encuesta. Lo sentimos: esta vez no podemos enviarle saldo.",
        "en": "Thank you! You finished the survey. Sorry: we cannot send you credit this time.",
    },
    "ask_phone": {
        "es": "Para enviarle su saldo de {amount} {currency}, escriba su número de celular (10 dígitos) "
              "o toque «Compartir mi número».",
        "en": "To send you your {amount} {currency} credit, write your mobile number "
              "or tap “Share my number”.",
    },
    "phone_button": {"es": "📱 Compartir mi número", "en": "📱 Share my number"},
    "error_phone": {
        "es": "Ese no parece un número de celular. Escriba los 10 dígitos, p. ej. 55 1234 5678.",
        "en": "That does not look like a mobile number. Write it with its area code, e.g. 55 1234 5678.",
    },
    "phone_later": {
        "es": "Cuando quiera, escríbanos su número de celular para enviarle su saldo.",
        "en": "Whenever you like, send us your mobile number to get your credit.",
    },
    "phone_saved": {
        "es": "Gracias. Enviaremos su saldo al número que termina en {ending}.",
        "en": "Thank you. We will send your credit to the number ending in {ending}.",
    },
    "phone_paid_before": {
        "es": "Ese número ya recibió el saldo de esta encuesta. ¡Gracias por participar!",
        "en": "That number already got the credit for this survey. Thank you for taking part!",
    },
    "credit_sent": {
        "es": "Le enviamos su saldo de {amount} {currency}. ¡Gracias por participar!",
        "en": "We sent your {amount} {currency} credit. Thank you for taking part!",
    },
    "already_completed": {
        "es": "Ya respondió esta encuesta. ¡Gracias! Escriba AYUDA si necesita algo.",
        "en": "You already answered this survey. Thank you! Send HELP if you need anything.",
    },
    "already_declined": {
        "es": "Usted decidió no participar. Si cambia de opinión, escriba {keyword}.",
        "en": "You chose not to take part. If you change your mind, send {keyword}.",
    },
    "expired": {
        "es": "Esta encuesta ya cerró. ¡Gracias por su tiempo!",
        "en": "This survey has closed. Thank you for your time!",
    },
    "opted_out": {
        "es": "Listo, no recibirá más mensajes. Para volver, escriba ALTA.",
        "en": "Done, you will get no more messages. To come back, send START.",
    },
    "opted_in": {
        "es": "Bienvenido de nuevo.",
        "en": "Welcome back.",
    },
    "help": {
        "es": "Encuesta «{title}». Conteste cada pregunta. SALTAR omite una opcional, ENGLISH cambia idioma, BAJA termina.",
        "en": "Survey “{title}”. Answer each question. SKIP skips an optional one, ESPAÑOL changes language, STOP ends.",
    },
    "language_changed": {
        "es": "Ahora seguimos en español.",
        "en": "We will continue in English.",
    },
    "welcome_back": {
        "es": "Hola de nuevo, seguimos donde quedamos.",
        "en": "Hello again, let's continue where we stopped.",
    },
    "paused": {
        "es": "No logramos entender su respuesta. Escríbanos cuando quiera para seguir.",
        "en": "We could not understand your answer. Write to us any time to continue.",
    },
    "skipped": {
        "es": "Pasamos a la siguiente pregunta.",
        "en": "Let's go to the next question.",
    },
    "required": {
        "es": "Esta pregunta no se puede saltar.",
        "en": "This question cannot be skipped.",
    },
    "media": {
        "es": "Solo puedo leer texto. Responda con palabras o números.",
        "en": "I can only read text. Please answer with words or numbers.",
    },
    "edited": {
        "es": "Recibí una edición. Si quiere cambiar su respuesta, envíela como mensaje nuevo.",
        "en": "I got an edit. To change your answer, send it as a new message.",
    },
    "stale_button": {
        "es": "Ese botón era de una pregunta anterior.",
        "en": "That button belonged to an earlier question.",
    },
    "no_credit": {
        "es": "Aviso: por ahora ya no hay saldo disponible para esta encuesta, pero su respuesta sí nos ayuda.",
        "en": "Note: there is no more phone credit for this survey now, but your answers still help.",
    },
    "confirm": {
        "es": "¿Quiso decir {label}? Responda SI o NO.",
        "en": "Did you mean {label}? Reply YES or NO.",
    },
    "hint_yes_no": {"es": "(SI/NO)", "en": "(YES/NO)"},
    "hint_multi": {"es": "Puede elegir varias, p. ej. 1 3.", "en": "You can pick several, e.g. 1 3."},
    "hint_optional": {"es": "(o SALTAR)", "en": "(or SKIP)"},
    "error_not_understood": {
        "es": "No entendí su respuesta.",
        "en": "I did not understand your answer.",
    },
    "error_choice": {
        "es": "Responda con el número de una opción.",
        "en": "Please reply with the number of an option.",
    },
    "error_multi": {
        "es": "Responda con uno o más números, p. ej. 1 3.",
        "en": "Please reply with one or more numbers, e.g. 1 3.",
    },
    "error_yes_no": {"es": "Responda SI o NO, por favor.", "en": "Please reply YES or NO."},
    "error_ambiguous": {
        "es": "Su respuesta coincide con varias opciones; elija un número.",
        "en": "Your answer matches several options; please pick a number.",
    },
    "error_exclusive": {
        "es": "Esa opción no se combina con otras; elija de nuevo.",
        "en": "That option cannot be combined with others; please choose again.",
    },
    "error_number": {"es": "Responda con un número.", "en": "Please reply with a number."},
    "error_range": {
        "es": "Responda con un número entre {min} y {max}.",
        "en": "Please reply with a number between {min} and {max}.",
    },
    "error_too_small": {
        "es": "El número debe ser {min} o más.",
        "en": "The number must be {min} or more.",
    },
    "error_too_large": {
        "es": "El número debe ser {max} o menos.",
        "en": "The number must be {max} or less.",
    },
    "error_too_long": {
        "es": "Su respuesta es muy larga (máximo {max_length} caracteres).",
        "en": "Your answer is too long (at most {max_length} characters).",
    },
    "error_empty": {"es": "Escriba su respuesta, por favor.", "en": "Please write your answer."},
    "error_date": {
        "es": "Escriba una fecha, p. ej. 15/03/2024.",
        "en": "Please write a date, e.g. 15/03/2024.",
    },
    "error_region": {
        "es": "No reconocí el estado. Escriba su nombre, p. ej. Jalisco.",
        "en": "I did not recognise the state. Write its name, e.g. Jalisco.",
    },
}

YES_NO_LABELS: dict[str, dict[str, str]] = {
    "yes": {"es": "Sí", "en": "Yes"},
    "no": {"es": "No", "en": "No"},
}

CONSENT_LABELS: dict[str, dict[str, str]] = {
    "yes": {"es": "Sí, acepto", "en": "Yes, I agree"},
    "no": {"es": "No", "en": "No"},
}

# Whole-message keywords, matched after normalization (case, accents and punctuation ignored).
OPT_OUT_KEYWORDS = frozenset(
    {
        "stop", "baja", "alto", "cancelar", "unsubscribe", "stopall", "stop all", "cancel", "end", "quit",
        "darme de baja", "dar de baja", "quiero darme de baja",
    }
)
OPT_IN_KEYWORDS = frozenset({"start", "alta", "unstop", "iniciar"})
HELP_KEYWORDS = frozenset({"ayuda", "help", "info"})
LANGUAGE_KEYWORDS: dict[str, str | None] = {
    "idioma": None,
    "language": None,
    "lang": None,
    "english": "en",
    "ingles": "en",
    "en ingles": "en",
    "espanol": "es",
    "spanish": "es",
    "en espanol": "es",
}
SKIP_WORDS: dict[str, tuple[str, ...]] = {
    "es": ("saltar", "salta", "omitir", "paso", "siguiente", "prefiero no decir", "prefiero no responder"),
    "en": ("skip", "pass", "next", "prefer not to say"),
}
GREETINGS_EN = frozenset({"hi", "hello", "hey", "survey", "english", "start", "good morning"})
DEFAULT_START_KEYWORD = {"es": "ENCUESTA", "en": "SURVEY"}

# Erasure by message (a right of the people asked): the keyword, then the same keyword again to confirm.
ERASE_KEYWORDS = frozenset({"borrar", "borrar mis datos", "borra mis datos", "delete my data", "erase my data"})
DEFAULT_MESSAGES.update({
    "erase_confirm": {
        "es": "¿Borrar todos sus datos y respuestas? Para confirmar, escriba BORRAR otra vez.",
        "en": "Delete all your data and answers? To confirm, send DELETE MY DATA again.",
    },
    "erased": {
        "es": "Listo: borramos sus datos y no le volveremos a escribir.",
        "en": "Done: we are deleting your data and will not write to you again.",
    },
})

ALL_KEYWORDS = (OPT_OUT_KEYWORDS | OPT_IN_KEYWORDS | HELP_KEYWORDS | frozenset(LANGUAGE_KEYWORDS)
                | ERASE_KEYWORDS)
