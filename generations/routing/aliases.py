"""Model aliases (VIDEOGEN_MODEL_ALIASES, CONTRACT 9): a request naming an alias is served
by its target, and says so.

`sora-2=veo-31,old=new`: the alias may be a name of the operator's own (`old`) or a catalog
model's key (`sora-2`: OpenAI retires Sora 2, and clients that ask for it get Veo 3.1).
The target must be a catalog model and never itself an alias (no chains, so no cycles).
`manage.py check` (and every command that checks, `serve` and `migrate` included) names a
bad entry as an error; at run time bad entries are ignored, never half applied.

Validation (core/validation.py) resolves the name once, at submit: the generation stores
the target as its `model` and the name as typed as its `requested_model`."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from django.conf import settings
from django.core import checks

from generations import catalog

SETTING = "VIDEOGEN_MODEL_ALIASES"
# Generation.requested_model holds the name as typed.
MAX_ALIAS_CHARS = 40


@dataclass(frozen=True)
class Aliases:
    targets: Mapping[str, str]  # alias -> catalog key
    problems: tuple[str, ...]  # one line per bad entry, naming it

    def of(self, key: str) -> list[str]:
        """The aliases that resolve to catalog model `key`, in the setting's order."""
        return [alias for alias, target in self.targets.items() if target == key]


def parse(entries: Iterable[tuple[str, str]]) -> Aliases:
    """The setting's `alias=target` pairs, checked: the good ones, and what is wrong with
    the others (an entry with a problem is left out whole)."""
    pairs = list(entries)
    aliases = {alias for alias, _ in pairs}
    targets: dict[str, str] = {}
    problems: list[str] = []
    for alias, target in pairs:
        entry = f"{alias}={target}"
        if not alias or not target:
            problems.append(f"{entry!r}: expected `alias=model`")
        elif len(alias) > MAX_ALIAS_CHARS:
            problems.append(f"{entry!r}: an alias has at most {MAX_ALIAS_CHARS} characters")
        elif alias == target:
            problems.append(f"{entry!r}: a model cannot be an alias of itself")
        elif target in aliases:
            problems.append(
                f"{entry!r}: {target!r} is itself an alias; point {alias!r} at a model "
                "(aliases do not chain)"
            )
        elif catalog.get_model(target) is None:
            known = ", ".join(m.key for m in catalog.MODELS)
            problems.append(f"{entry!r}: {target!r} is not a catalog model (known: {known})")
        elif alias in targets:
            problems.append(f"{entry!r}: {alias!r} is already an alias of {targets[alias]!r}")
        else:
            targets[alias] = target
    return Aliases(targets, tuple(problems))


@functools.lru_cache(maxsize=8)
def _parsed(entries: tuple[tuple[str, str], ...]) -> Aliases:
    return parse(entries)


def current() -> Aliases:
    """The aliases this server is configured with (parsed once per distinct setting)."""
    return _parsed(tuple(getattr(settings, SETTING, ())))


def resolve(name: str) -> tuple[str, str]:
    """(the model that serves `name`, the alias used or "" when `name` is no alias)."""
    target = current().targets.get(name)
    return (target, name) if target is not None else (name, "")


def check_aliases(app_configs: object = None, **kwargs: object) -> list[checks.CheckMessage]:
    """`manage.py check` (registered in apps.py): errors, because a mistyped alias would
    otherwise send paying clients to the wrong model or to a 400."""
    return [
        checks.Error(f"{SETTING} entry {problem}.", id="videogen.E110")
        for problem in current().problems
    ]
