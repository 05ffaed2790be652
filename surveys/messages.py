"""The engine's own messages and keywords, in Spanish and English; a survey may override any message.

Messages are short on purpose: one SMS segment where possible. Placeholders in braces are filled by the engine.
"""

from __future__ import annotations

DEFAULT_MESSAGES: dict[str, dict[str, str]] = {
    "declined": {
        "es": "Entendido, gracias. No le enviaremos mas preguntas.",
        "en": "Understood, thank you. We will not send you more questions.",
    },
    "completed": {
        "es": "¡Gracias por completar la encuesta!",
        "en": "Thank you for completing the survey!",
    },
    "completed_incentive": {
        "es": "¡Gracias por completar la encuesta! Pronto le enviaremos su saldo de {credit}.",
        "en": "Thank you for completing the survey! We will soon send your {credit} credit.",
    },
    "completed_no_credit": {
        "es": "¡Gracias por completar la encuesta! Lo sentimos: esta vez no podemos enviarle saldo.",
        "en": "Thank you for completing the survey! Sorry: we cannot send you credit this time.",
    },
    "ask_phone": {
        "es": "Para enviarle su saldo de {credit}, escriba su numero de celular (10 digitos) o toque el boton "
              "de abajo.",
        "en": "To send you your {credit} credit, write your mobile number or tap the button below.",
    },
    "phone_button": {"es": "📱 Compartir mi número", "en": "📱 Share my number"},
    "error_phone": {
        "es": "Ese no parece un numero de celular. Escriba los 10 digitos, p. ej. 55 1234 5678.",
        "en": "That does not look like a mobile number. Write it with its area code, e.g. 55 1234 5678.",
    },
    "phone_later": {
        "es": "Cuando quiera, escribanos su numero de celular para enviarle su saldo de {credit}.",
        "en": "Whenever you like, send us your mobile number to get your {credit} credit.",
    },
    "phone_saved": {
        "es": "Gracias. Enviaremos su saldo de {credit} al numero que termina en {ending}.",
        "en": "Thank you. We will send your {credit} credit to the number ending in {ending}.",
    },
    "phone_paid_before": {
        "es": "A ese numero ya le enviamos el saldo de esta encuesta. ¡Gracias por participar!",
        "en": "That number already got the credit for this survey. Thank you for taking part!",
    },
    "credit_sent": {
        "es": "Le enviamos su saldo de {credit}. ¡Gracias por participar!",
        "en": "We sent your {credit} credit. Thank you for taking part!",
    },
    "already_completed": {
        "es": "Esta encuesta ya tiene sus respuestas. ¡Gracias! Escriba AYUDA si necesita algo.",
        "en": "You already answered this survey. Thank you! Send HELP if you need anything.",
    },
    "already_declined": {
        "es": "Entendimos que no desea participar. Si lo piensa mejor, escriba {keyword}.",
        "en": "You chose not to take part. If you change your mind, send {keyword}.",
    },
    "expired": {
        "es": "Esta encuesta ya no recibe respuestas. ¡Gracias por su tiempo!",
        "en": "This survey has closed. Thank you for your time!",
    },
    "opted_out": {
        "es": "Listo, ya no le escribiremos. Para volver, escriba ALTA.",
        "en": "Done, we will not write to you again. To come back, send START.",
    },
    "opted_in": {
        "es": "Gracias por volver.",
        "en": "Thanks for coming back.",
    },
    "opt_out_confirm": {
        "es": "¿Quiere dejar de recibir mensajes? Responda BAJA.",
        "en": "Do you want to stop getting messages? Reply STOP.",
    },
    "opt_out_cancelled": {
        "es": "Bien, seguimos.",
        "en": "OK, let's continue.",
    },
    "confirm_age": {
        "es": "¿Tiene {age} años?",
        "en": "Are you {age} years old?",
    },
    "confirm_minor": {
        "es": "¿Tiene menos de {min_age} años?",
        "en": "Are you under {min_age}?",
    },
    "ineligible": {
        "es": "Gracias por escribirnos. Esta encuesta es solo para personas de {min_age} años o mas, asi que no "
              "le haremos mas preguntas. ¡Le deseamos lo mejor!",
        "en": "Thank you for writing to us. This survey is only for people aged {min_age} or older, so we will "
              "not ask you more questions. We wish you all the best!",
    },
    "help": {
        "es": "{contact}. SALTAR omite una pregunta opcional, ENGLISH cambia el idioma, BAJA termina.",
        "en": "{contact}. SKIP skips an optional question, ESPAÑOL changes the language, STOP ends.",
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
        "es": "No logramos entender su respuesta. Escribanos cuando quiera para seguir.",
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
    "refused": {
        "es": "Esta pregunta es necesaria para la encuesta. Si prefiere no seguir, escriba BAJA.",
        "en": "This question is needed for the survey. If you would rather stop, send STOP.",
    },
    "media": {
        "es": "Solo puedo leer texto. Responda con palabras o numeros.",
        "en": "I can only read text. Please answer with words or numbers.",
    },
    "edited": {
        "es": "Los mensajes editados no cuentan: para cambiar su respuesta, mande un mensaje nuevo.",
        "en": "Edited messages do not count: to change your answer, send a new message.",
    },
    "stale_button": {
        "es": "Ese boton era de una pregunta anterior.",
        "en": "That button belonged to an earlier question.",
    },
    "no_credit": {
        "es": "Aviso: por ahora ya no hay saldo disponible para esta encuesta, pero sus respuestas nos ayudan igual.",
        "en": "Note: there is no more phone credit for this survey now, but your answers still help.",
    },
    "confirm": {
        "es": "¿Quiso decir {label}? Responda SI o NO.",
        "en": "Did you mean {label}? Reply YES or NO.",
    },
    "hint_yes_no": {"es": "(SI/NO)", "en": "(YES/NO)"},
    "hint_multi": {"es": "Puede elegir varias, p. ej. 1 3.", "en": "You can pick several, e.g. 1 3."},
    "hint_optional": {"es": "(o SALTAR)", "en": "(or SKIP)"},
    "unsure_choice": {
        "es": "Elija la opcion que mas se acerque, con su numero.",
        "en": "Pick the option closest to your case, by its number.",
    },
    "unsure_multi": {
        "es": "Elija las opciones que mas se acerquen, p. ej. 1 3.",
        "en": "Pick the options closest to your case, e.g. 1 3.",
    },
    "unsure_yes_no": {
        "es": "Responda SI o NO, lo que mas se acerque.",
        "en": "Reply YES or NO, whichever is closer.",
    },
    "unsure_number": {
        "es": "Un numero aproximado esta bien.",
        "en": "An approximate number is fine.",
    },
    "unsure_date": {
        "es": "Una fecha aproximada esta bien, p. ej. 03/2024.",
        "en": "An approximate date is fine, e.g. 03/2024.",
    },
    "unsure_region": {
        "es": "Escriba el estado donde vive ahora, p. ej. Jalisco.",
        "en": "Write the state you live in now, e.g. Jalisco.",
    },
    "unsure_text": {
        "es": "Escriba su respuesta con sus palabras.",
        "en": "Write your answer in your own words.",
    },
    "error_not_understood": {
        "es": "No entendimos su respuesta.",
        "en": "I did not understand your answer.",
    },
    "error_choice": {
        "es": "Responda con el numero de una opcion.",
        "en": "Please reply with the number of an option.",
    },
    "error_multi": {
        "es": "Responda con uno o mas numeros, p. ej. 1 3.",
        "en": "Please reply with one or more numbers, e.g. 1 3.",
    },
    "error_yes_no": {"es": "Responda SI o NO, por favor.", "en": "Please reply YES or NO."},
    "error_ambiguous": {
        "es": "Su respuesta coincide con varias opciones; elija un numero.",
        "en": "Your answer matches several options; please pick a number.",
    },
    "error_means": {
        "es": "¿Cual de ellas? Responda {options}.",
        "en": "Which one? Reply {options}.",
    },
    "error_exclusive": {
        "es": "Esa opcion no se combina con otras; elija de nuevo.",
        "en": "That option cannot be combined with others; please choose again.",
    },
    "error_number": {"es": "Responda con un numero.", "en": "Please reply with a number."},
    "error_range": {
        "es": "Responda con un numero entre {min} y {max}.",
        "en": "Please reply with a number between {min} and {max}.",
    },
    "error_too_small": {
        "es": "El numero debe ser {min} o mas.",
        "en": "The number must be {min} or more.",
    },
    "error_too_large": {
        "es": "El numero debe ser {max} o menos.",
        "en": "The number must be {max} or less.",
    },
    "error_too_long": {
        "es": "Su respuesta es muy larga (hasta {max_length} letras).",
        "en": "Your answer is too long (at most {max_length} characters).",
    },
    "error_empty": {"es": "Escriba su respuesta, por favor.", "en": "Please write your answer."},
    "error_date": {
        "es": "Escriba una fecha, p. ej. 15/03/2024.",
        "en": "Please write a date, e.g. 15/03/2024.",
    },
    "error_region_which": {
        "es": "¿{regions}? Escriba el nombre completo.",
        "en": "{regions}? Please write the full name.",
    },
    "keyword_region": {
        "es": "¿{regions}? Si quiere dejar de recibir mensajes, escriba {keyword} otra vez.",
        "en": "{regions}? To stop getting messages, send {keyword} again.",
    },
    "error_region": {
        "es": "No encontramos ese estado. Escriba su nombre, p. ej. Jalisco.",
        "en": "I did not recognise the state. Write its name, e.g. Jalisco.",
    },
}
TELEGRAM_ONLY = frozenset({"phone_button"})
"""Messages that only ever appear on Telegram (a button label): exempt from the one-SMS-segment rule."""

YES_NO_LABELS: dict[str, dict[str, str]] = {
    "yes": {"es": "Sí", "en": "Yes"},
    "no": {"es": "No", "en": "No"},
}

MINOR_LABELS: dict[str, dict[str, str]] = {
    "yes": {"es": "Si", "en": "Yes"},
    "no": {"es": "No, me equivoqué", "en": "No, my mistake"},
}
"""The options of the confirmation before a minor is screened out (GSM-7: 'Si' without its accent)."""

CONSENT_LABELS: dict[str, dict[str, str]] = {
    "yes": {"es": "Sí, acepto", "en": "Yes, I agree"},
    "no": {"es": "No", "en": "No"},
}

CONSENT_SYNONYMS: dict[str, dict[str, tuple[str, ...]]] = {
    "yes": {"es": ("no hay problema", "sin problema", "no hay bronca"), "en": ("no problem", "no worries")},
    "no": {
        "es": ("no quiero", "no por ahora", "ahorita no", "ahora no", "no quiero participar", "no quiero contestar"),
        "en": ("not now", "i don t want to", "i don t want to answer", "i dont want to answer"),
    },
}
"""Whole replies that accept or decline taking part, though they would not be a yes or a no to another question
('no hay problema' agrees to take part; to "¿Tiene vivienda?" it is asked again)."""

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

# Plain-language requests to stop, matched after normalization: they are asked once to confirm with the keyword
# ("opt_out_confirm"); a second one, or a yes to that question, opts out.
STOP_PHRASES = (
    "no me escriban", "no me escriba", "no me escribas", "no me vuelvan a escribir", "no me vuelva a escribir",
    "dejen de escribirme", "deje de escribirme", "deja de escribirme", "dejen de escribir",
    "dejen de mandarme", "deje de mandarme", "dejen de enviarme", "no me manden", "no me mande",
    "no me envien", "no me envie", "no quiero seguir", "no quiero continuar", "no quiero participar",
    "ya no quiero participar", "no quiero mas mensajes", "no quiero recibir", "ya no quiero recibir",
    "no quiero que me escriban", "dejenme en paz", "dejeme en paz", "dejame en paz", "no me molesten",
    "no me moleste", "dejen de molestar", "dejen de molestarme", "quitenme de la lista", "quiteme de la lista",
    "quitame de la lista", "sacame de la lista", "saquenme de la lista", "borrenme de la lista",
    "borrame de la lista", "quitenme de su lista", "no quiero contestar mas", "ya no quiero contestar",
    "stop texting", "stop messaging", "stop sending", "stop writing", "quit texting", "dont text me",
    "don t text me", "do not text me", "dont message me", "don t message me", "do not message me",
    "dont contact me", "don t contact me", "do not contact me", "leave me alone", "remove me", "take me off",
    "unsubscribe me", "opt me out", "i want to stop", "i dont want to continue", "i don t want to continue",
    "i do not want to continue", "i dont want to participate", "i don t want to participate",
    "i do not want to participate", "no more messages", "no more texts", "please stop",
)  # fmt: skip
STOP_ALONE = ("basta", "ya basta", "basta ya", "enough", "no mas mensajes", "ya estuvo")
"""Requests to stop made of common words. Like STOP_PHRASES, they count only as the whole message: filler
(STOP_FILLER) around them and a few trailing words (STOP_TAIL) aside, never inside a longer answer."""
STOP_TAIL = frozenset(
    "mas mensajes mensaje sms whatsapp con esto esta encuesta me a mi anymore more messages texts this survey".split()
)
"""Words that may end a request to stop ('ya no quiero recibir mensajes', 'no quiero seguir con esto', 'stop
texting me')."""
TAKING_PART = frozenset({"participar", "seguir", "continuar", "contestar", "participate", "continue"})
"""A request to stop that names taking part ('no quiero participar') answers the consent question: a decline."""
STOP_FILLER = frozenset("ya por favor porfa porfavor please ok gracias thanks de verdad en serio seriously".split())
