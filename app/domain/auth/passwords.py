"""Password policy: long enough, not a common password, not one repeated character or a simple sequence.

The common-password list (`common_passwords.txt`, 10,000 entries, one per line, lower case) ships with the
package and is read once; nothing is fetched at run time.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from app.domain.auth.secrets import MIN_PASSWORD_LENGTH

_LIST = Path(__file__).with_name("common_passwords.txt")
_RUNS = ("0123456789", "abcdefghijklmnopqrstuvwxyz", "qwertyuiop", "asdfghjkl", "zxcvbnm", "1qaz2wsx3edc4rfv")


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    return frozenset(line.strip() for line in _LIST.read_text(encoding="utf-8").splitlines() if line.strip())


def _is_sequence(text: str) -> bool:
    """One repeated character, or a run (either way, wrapping round) of digits, letters or a keyboard row."""
    if len(set(text)) == 1:
        return True
    for run in _RUNS:
        for source in (run, run[::-1]):
            cycle = source * (len(text) // len(source) + 2)
            if text in cycle:
                return True
    steps = {ord(b) - ord(a) for a, b in zip(text, text[1:], strict=False)}
    return len(steps) == 1  # 13579..., acegi...


def weakness(password: str) -> str | None:
    """Why `password` is refused, or None when it is acceptable."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"at least {MIN_PASSWORD_LENGTH} characters"
    folded = password.strip().lower()
    if folded in common_passwords():
        return "this password is too common"
    compact = "".join(folded.split())
    if _is_sequence(compact):
        return "a repeated character or a simple sequence is too easy to guess"
    half = len(compact) // 2
    if len(compact) % 2 == 0 and compact[:half] == compact[half:] and compact[:half] in common_passwords():
        return "this password is too common"
    return None


def check_password(password: str) -> str:
    """Pydantic validator: the password, or ValueError naming what is wrong."""
    problem = weakness(password)
    if problem is not None:
        raise ValueError(f"password too weak: {problem}")
    return password
