"""Takes on the Generate form: variations, compared models, a pasted seed sweep or prompt
list, or a CSV of them, read into the request core/batches.plan takes (CONTRACT 7). The form
only reads what was typed; plan() decides what is valid, as it does for the API."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from django import forms
from django.core.files.uploadedfile import UploadedFile

from generations.core import batches
from generations.core.validation import MAX_SEED
from generations.errors import ApiError
from generations.spec import GenerationSpec

MAX_TAKES = 8
# A list of 64 prompts of 2,000 characters fits well inside this.
MAX_CSV_BYTES = 256 * 1024
# The form fields a plan() error is shown beside, by the request field it names.
ERROR_FIELDS = {
    "prompts": "prompt_list",
    "seeds": "seed_list",
    "models": "compare_models",
    "count": "takes",
    "image_url": "image",
}
# How plan()'s messages name the request fields, and what the form calls them.
WORDS = {
    "`prompts`": "the prompt list",
    "`seeds`": "the seed list",
    "`models`": "Compare models",
    "`count`": "Takes",
    "`seed`": "Seed",
    "`model`": "Model",
    "`prompt`": "Prompt",
}


@dataclass
class TakesList:
    """What the list fields and the CSV hold: prompts, seeds, or (prompt, seed) rows."""

    prompts: list[str] | None = None
    seeds: list[int] | None = None
    rows: list[tuple[str, int]] = field(default_factory=list)
    from_csv: bool = False


def lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def parse_seeds(values: list[str], where: str) -> list[int]:
    seeds = []
    for n, value in enumerate(values, 1):
        if not re.fullmatch(r"\d+", value) or int(value) > MAX_SEED:
            raise forms.ValidationError(
                f"{where} {n} is {value[:40]!r}: a seed is a whole number from 0 to {MAX_SEED}."
            )
        seeds.append(int(value))
    return seeds


def parse_csv(upload: UploadedFile) -> TakesList:
    """One column (prompts, or seeds when every value is a whole number), or a header row
    naming a `prompt` column, a `seed` column or both (then each row is one take)."""
    if upload.size is not None and upload.size > MAX_CSV_BYTES:
        raise forms.ValidationError(f"The CSV file is over {MAX_CSV_BYTES // 1024} KB.")
    try:
        text = upload.read(MAX_CSV_BYTES + 1).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise forms.ValidationError("The CSV file is not UTF-8 text.") from None
    try:
        rows = [[cell.strip() for cell in row] for row in csv.reader(io.StringIO(text))]
    except csv.Error as exc:
        raise forms.ValidationError(f"The CSV file could not be read: {exc}.") from None
    rows = [row for row in rows if any(row)]
    if not rows:
        raise forms.ValidationError("The CSV file is empty.")
    header = [cell.lower() for cell in rows[0]]
    if "prompt" in header or "seed" in header:
        body = rows[1:]
        if not body:
            raise forms.ValidationError("The CSV file has a header row and nothing under it.")
        p = header.index("prompt") if "prompt" in header else None
        s = header.index("seed") if "seed" in header else None

        def column(i: int) -> list[str]:
            return [row[i] if i < len(row) else "" for row in body]

        prompts = column(p) if p is not None else None
        seed_cells = column(s) if s is not None else None
        if prompts is not None and not all(prompts):
            raise forms.ValidationError("Row with an empty `prompt` in the CSV file.")
        seeds = parse_seeds(seed_cells, "CSV seed") if seed_cells is not None else None
        if prompts is not None and seeds is not None:
            return TakesList(rows=list(zip(prompts, seeds, strict=True)), from_csv=True)
        return TakesList(prompts=prompts, seeds=seeds, from_csv=True)
    if any(len([c for c in row if c]) > 1 for row in rows):
        raise forms.ValidationError(
            "The CSV file has several columns: give it a header row naming the `prompt` "
            "and `seed` columns, or one column only."
        )
    values = [next(c for c in row if c) for row in rows]
    if all(re.fullmatch(r"\d+", v) for v in values):
        return TakesList(seeds=parse_seeds(values, "CSV seed"), from_csv=True)
    return TakesList(prompts=values, from_csv=True)


class PlanError(Exception):
    """A plan() refusal, with the form field to show it beside."""

    def __init__(self, field: str | None, message: str, status: int) -> None:
        super().__init__(message)
        self.field, self.message, self.status = field, message, status


def _words(message: str) -> str:
    for api, label in WORDS.items():
        message = message.replace(api, label)
    return message


def batch_requests(
    data: Mapping[str, object], takes: int, models: list[str], found: TakesList
) -> list[dict[str, object]] | None:
    """The batch request(s) for plan(), or None for a single generation (no list field
    used). Several requests when a CSV pairs each prompt with its seed."""
    base = dict(data)
    if base.get("seed") == -1:
        base.pop("seed")  # random: plan() draws a fresh seed for each item
    extra: dict[str, object] = {}
    if models:
        base.pop("model", None)
        extra["models"] = models
    if takes > 1:
        extra["count"] = takes
    if found.prompts is not None:
        extra["prompts"] = found.prompts
    if found.seeds is not None:
        extra["seeds"] = found.seeds
    if found.rows:
        if base.get("prompt"):
            raise PlanError("list_file", "The CSV file pairs prompts with seeds: leave the "
                            "Prompt field empty.", 400)  # fmt: skip
        return [{**base, **extra, "prompt": p, "seeds": [s]} for p, s in found.rows]
    if not extra:
        return None
    if "seed" in base and "seeds" not in extra and "count" not in extra:
        # plan() draws a fresh seed for each item unless told the seeds: a seed chosen on
        # the form is kept for every prompt and model.
        extra["seeds"] = [base.pop("seed")]
    return [{**base, **extra}]


def plan(bodies: list[dict[str, object]], *, csv_used: bool) -> list[GenerationSpec]:
    """Every item's spec, or PlanError naming the form field."""
    specs: list[GenerationSpec] = []
    try:
        for body in bodies:
            specs.extend(batches.plan(body, test_mode=False).specs)
            if len(specs) > batches.MAX_ITEMS:
                raise PlanError("list_file", f"A batch has at most {batches.MAX_ITEMS} "
                                f"items; the CSV file makes more.", 400)  # fmt: skip
    except ApiError as exc:
        raise PlanError(form_field(exc.field, csv_used), _words(exc.message), exc.status) from None
    return specs


def form_field(api_field: str | None, csv_used: bool) -> str | None:
    if api_field in ("prompts", "seeds") and csv_used:
        return "list_file"
    if api_field is None:
        return None
    return ERROR_FIELDS.get(api_field, api_field)
