"""Normalisation of a code as a person types or pastes it."""

from __future__ import annotations

__all__ = ["normalize_code"]

_OUTER_WHITESPACE = " \t\r\n"
_GROUP_SEPARATORS = (" ", "-")


def normalize_code(code: str, digits: int) -> str | None:
    """Return ``code`` as exactly ``digits`` ASCII digits, or ``None`` when it cannot be one.

    The one normalisation: outer ASCII spaces, tabs and line breaks are dropped, and so is one
    inner ASCII space or hyphen between two digits (apps show "123 456"). Anything else (Unicode
    digits, signs, underscores, a wrong length) gives ``None``: it is no match, never an error.
    A non-``str`` code is a ``TypeError``: an ``int`` would have lost its leading zeros.
    """
    if type(code) is not str:
        if isinstance(code, str):  # a str subclass: use its plain value
            code = str.__str__(code)
        else:
            raise TypeError(
                f"a code must be a str, not {type(code).__name__} (an int loses leading zeros)"
            )
    # Fast path: what a well-behaved form posts. isascii() first, because str.isdigit() is also
    # true for Unicode digits such as ARABIC-INDIC DIGIT ONE or FULLWIDTH DIGIT ONE.
    if len(code) == digits and code.isascii() and code.isdigit():
        return code
    if len(code) > 4 * digits:  # nothing longer can normalise to `digits` digits; bound the work
        return None
    code = code.strip(_OUTER_WHITESPACE)
    if len(code) == digits + 1:
        for separator in _GROUP_SEPARATORS:
            head, found, tail = code.partition(separator)
            if found and head and tail:
                code = head + tail
                break
    if len(code) == digits and code.isascii() and code.isdigit():
        return code
    return None
