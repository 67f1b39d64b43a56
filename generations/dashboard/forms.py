"""Dashboard forms. Generation requests are validated by specs.build_spec, as on the API."""

from __future__ import annotations

import base64
from typing import Any

from django import forms
from django.contrib.auth.forms import AuthenticationForm, UserCreationForm
from django.core.files.uploadedfile import UploadedFile

from generations import catalog
from generations.core.batches import MAX_ITEMS
from generations.core.validation import MAX_PROMPT_CHARS
from generations.dashboard import throttle
from generations.dashboard.takes import (
    MAX_TAKES,
    TakesList,
    batch_requests,
    lines,
    parse_csv,
    parse_seeds,
)
from generations.models import User
from generations.rendering import registry


class SignupForm(UserCreationForm[User]):
    class Meta:
        model = User
        fields = ("email", "name")
        labels = {"email": "Email", "name": "Name"}


class LoginForm(AuthenticationForm):
    """The stock login form behind the login throttle (generations/dashboard/throttle.py)."""

    throttled = 0  # seconds until the account may be tried again from this address

    def clean(self) -> dict[str, Any]:
        username = str(self.cleaned_data.get("username") or "")
        if self.request is not None and username:
            wait = throttle.locked_for(self.request, username)
            if wait:
                # Refused before the password is checked: no guess counts while locked.
                self.throttled = wait
                raise forms.ValidationError(throttle.lockout_message(wait), code="throttled")
            try:
                cleaned = super().clean()
            except forms.ValidationError:
                throttle.record_failure(self.request, username)
                raise
            throttle.record_success(self.request, username)
            return cleaned
        return super().clean()


def models_by_availability() -> tuple[list[catalog.ModelInfo], list[catalog.ModelInfo]]:
    """(the models this server serves, the ones it does not), each in catalog order: the
    picker lists the first and shows the second greyed out, not to be chosen."""
    available = [m for m in catalog.MODELS if registry.is_available(m)]
    return available, [m for m in catalog.MODELS if m not in available]


def picked_model(
    form: forms.Form, model_key: str | None
) -> tuple[list[catalog.ModelInfo], list[catalog.ModelInfo], catalog.ModelInfo]:
    """(models served here, models not, the model a form's choices follow): the one asked
    for (the argument, the posted or the initial `model`) when this server serves it, else
    the first it serves."""
    available, unavailable = models_by_availability()
    key = model_key or form.data.get("model") or form.initial.get("model") or "local"
    info = catalog.get_model(str(key))
    if info is None or info not in available:
        # The picker cannot show it selected (remixing a model no longer configured, a
        # stale ?model=): its choices follow the model the picker does show (`local` is
        # always served, so there is one).
        info = available[0]
    return available, unavailable, info


def upload_data_url(upload: UploadedFile) -> str:
    """An uploaded image as a data: URL, checked by the API's own rules like any other."""
    kind = (upload.content_type or "application/octet-stream").split(";")[0]
    return f"data:{kind};base64,{base64.b64encode(upload.read()).decode()}"


def end_frame_models() -> list[catalog.ModelInfo]:
    """The models served here that can end on a given frame (the picker's hint)."""
    return [m for m in models_by_availability()[0] if "end-frame" in m.capabilities]


# A model with more allowed durations than this, all whole seconds in a range, gets a number
# field (bounded by the model) instead of a list.
MAX_LISTED_DURATIONS = 8


# The fields that make more than one take; not part of any one generation's request.
TAKES_FIELDS = ("takes", "compare_models", "prompt_list", "seed_list", "list_file")


class ExtendForm(forms.Form):
    """Extending a finished clip (CONTRACT 6): seconds to add, and what happens in them
    (the source's prompt when left empty). The model's own limits are checked by the
    service, as on the API."""

    duration = forms.IntegerField(label="Seconds to add", min_value=1)
    prompt = forms.CharField(
        label="Prompt for the new seconds",
        required=False,
        max_length=MAX_PROMPT_CHARS,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "The same prompt as this clip"}),
    )

    def request_data(self) -> dict[str, object]:
        data: dict[str, object] = {"duration": self.cleaned_data["duration"]}
        if self.cleaned_data.get("prompt"):
            data["prompt"] = self.cleaned_data["prompt"]
        return data


class StoryboardForm(forms.Form):
    """A sequence's own settings on the storyboard page (its shots are read apart:
    dashboard/storyboard.py); choices follow the model, as on the generate form."""

    title = forms.CharField(label="Title", required=False, max_length=200)
    model = forms.ChoiceField(label="Model")
    resolution = forms.ChoiceField(label="Resolution")
    aspect_ratio = forms.ChoiceField(label="Aspect ratio")
    transition = forms.ChoiceField(
        label="Transition",
        choices=[
            ("cut", "Cut"),
            ("crossfade", "Crossfade"),
            ("continue", "Continue from the last frame"),
        ],
        initial="cut",
        widget=forms.RadioSelect,
    )
    add_audio = forms.BooleanField(label="Add audio", required=False)

    def __init__(self, *args: Any, model_key: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.available_models, self.unavailable_models, info = picked_model(self, model_key)
        self.model_info = info
        model = self.fields["model"]
        assert isinstance(model, forms.ChoiceField)
        model.choices = [(m.key, m.name) for m in self.available_models]
        model.initial = info.key
        resolution = self.fields["resolution"]
        assert isinstance(resolution, forms.ChoiceField)
        resolution.choices = [(r, r) for r in info.resolutions]
        resolution.initial = info.default_resolution
        aspect = self.fields["aspect_ratio"]
        assert isinstance(aspect, forms.ChoiceField)
        aspect.choices = [(a, a) for a in info.aspect_ratios]
        aspect.initial = "16:9"

    def request_data(self) -> dict[str, object]:
        """The sequence's part of a core/sequences.plan request (the shots are added)."""
        fields = ("model", "resolution", "aspect_ratio", "transition", "add_audio")
        return {name: self.cleaned_data[name] for name in fields}


class GenerateForm(forms.Form):
    """The fields and labels of the dashboard's generate form; choices follow the model."""

    prompt = forms.CharField(
        label="Prompt",
        max_length=MAX_PROMPT_CHARS,
        required=False,  # a prompt list or CSV may stand in for it (clean())
        widget=forms.Textarea(
            attrs={
                "rows": 3,
                "autofocus": True,
                "placeholder": "Describe the shot: the subject, the place, the light, the "
                "camera's move. E.g. a paper boat drifting on a calm pond at dawn",
            }
        ),
    )
    negative_prompt = forms.CharField(
        label="Negative prompt", required=False, max_length=MAX_PROMPT_CHARS
    )
    model = forms.ChoiceField(label="Model")
    image = forms.FileField(label="Image (upload or URL)", required=False)
    image_url = forms.CharField(label="Image URL", required=False, max_length=4096)
    # Keyframes (CONTRACT 6): the frame the video ends on, for the models that take one.
    end_image = forms.FileField(label="End frame (upload or URL)", required=False)
    end_image_url = forms.CharField(label="End frame URL", required=False, max_length=4096)
    duration = forms.TypedChoiceField(label="Duration", coerce=int)
    resolution = forms.ChoiceField(label="Resolution")
    aspect_ratio = forms.ChoiceField(label="Aspect ratio")
    seed = forms.IntegerField(label="Seed", required=False, initial=-1)
    camera_fixed = forms.BooleanField(label="Camera fixed", required=False)
    add_audio = forms.BooleanField(label="Add audio", required=False)
    audio_prompt = forms.CharField(label="Audio prompt", required=False, max_length=1000)
    # Remixing: the generation remixed, and what becomes of the image it was made from.
    remix_of = forms.CharField(required=False, max_length=40, widget=forms.HiddenInput)
    source_image = forms.ChoiceField(
        label="Starting image",
        required=False,
        choices=[
            ("keep", "Keep it"),
            ("replace", "Replace it with the file or URL above"),
            ("remove", "Remove it (text-to-video)"),
        ],
        widget=forms.RadioSelect,
    )

    # Takes (dashboard/takes.py): more than one item makes a batch.
    takes = forms.IntegerField(label="Takes", required=False, initial=1, min_value=1,
                               max_value=MAX_TAKES)  # fmt: skip
    compare_models = forms.MultipleChoiceField(
        label="Compare models", required=False, widget=forms.CheckboxSelectMultiple
    )
    prompt_list = forms.CharField(
        label="Prompt list", required=False, max_length=MAX_ITEMS * (MAX_PROMPT_CHARS + 1),
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "One prompt per line"}),
    )  # fmt: skip
    seed_list = forms.CharField(
        label="Seed sweep", required=False, max_length=MAX_ITEMS * 12,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "One seed per line"}),
    )  # fmt: skip
    list_file = forms.FileField(label="CSV file", required=False)

    def __init__(self, *args: Any, model_key: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.available_models, self.unavailable_models, info = picked_model(self, model_key)
        self.model_info = info
        model = self.fields["model"]
        assert isinstance(model, forms.ChoiceField)
        model.choices = [(m.key, m.name) for m in catalog.MODELS]
        model.initial = info.key
        duration = self.fields["duration"]
        assert isinstance(duration, forms.TypedChoiceField)
        duration.choices = [(d, f"{d} s") for d in info.durations]
        duration.initial = info.default_duration
        span = range(info.durations[0], info.durations[-1] + 1)
        if len(info.durations) > MAX_LISTED_DURATIONS and tuple(span) == info.durations:
            # Every whole second in a range: a bounded number field, not a 60-item list.
            duration.widget = forms.NumberInput(
                attrs={"min": span.start, "max": span.stop - 1, "step": 1, "inputmode": "numeric"}
            )
        resolution = self.fields["resolution"]
        assert isinstance(resolution, forms.ChoiceField)
        resolution.choices = [(r, r) for r in info.resolutions]
        resolution.initial = info.default_resolution
        aspect = self.fields["aspect_ratio"]
        assert isinstance(aspect, forms.ChoiceField)
        aspect.choices = [(a, a) for a in info.aspect_ratios]
        aspect.initial = "16:9"
        compare = self.fields["compare_models"]
        assert isinstance(compare, forms.MultipleChoiceField)
        compare.choices = [(m.key, m.name) for m in self.available_models]
        self.takes_list = TakesList()

    def clean_model(self) -> str:
        # Greyed out in the picker; one sent anyway (by hand, or from a page open while an
        # operator removed a key) says why here, before any round trip to the engine.
        chosen = catalog.get_model(str(self.cleaned_data["model"]))
        assert chosen is not None  # a choice of the field
        if not registry.is_available(chosen):
            raise forms.ValidationError(
                f"{chosen.name} is not configured on this server. "
                f"{registry.unavailable_reason(chosen)}"
            )
        return chosen.key

    def clean_prompt_list(self) -> list[str] | None:
        return lines(self.cleaned_data.get("prompt_list") or "") or None

    def clean_seed_list(self) -> list[int] | None:
        found = lines(self.cleaned_data.get("seed_list") or "")
        return parse_seeds(found, "Line") if found else None

    def clean_list_file(self) -> TakesList | None:
        upload: UploadedFile | None = self.cleaned_data.get("list_file")
        return parse_csv(upload) if upload is not None else None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or self.cleaned_data
        if cleaned.get("image") and cleaned.get("image_url"):
            self.add_error("image", "Give an image file or an image URL, not both.")
        if cleaned.get("end_image") and cleaned.get("end_image_url"):
            self.add_error("end_image", "Give an end frame file or URL, not both.")
        found: TakesList = cleaned.get("list_file") or TakesList()
        if cleaned.get("prompt_list"):
            if found.prompts is not None or found.rows:
                self.add_error("list_file", "Give a prompt list or a CSV file of prompts, "
                                            "not both.")  # fmt: skip
            found.prompts = cleaned["prompt_list"]
        if cleaned.get("seed_list"):
            if found.seeds is not None or found.rows:
                self.add_error("list_file", "Give a seed sweep or a CSV file of seeds, "
                                            "not both.")  # fmt: skip
            found.seeds = cleaned["seed_list"]
        self.takes_list = found
        no_prompt = not cleaned.get("prompt") and found.prompts is None and not found.rows
        if no_prompt and "prompt" not in self.errors:
            self.add_error("prompt", forms.Field.default_error_messages["required"])
        return cleaned

    def takes_requests(self, data: dict[str, object]) -> list[dict[str, object]] | None:
        """The batch request(s) this form makes (core/batches.plan's input), or None for
        a single generation."""
        models = list(self.cleaned_data.get("compare_models") or [])
        return batch_requests(data, self.cleaned_data.get("takes") or 1, models,
                              self.takes_list)  # fmt: skip

    def request_data(self) -> dict[str, object]:
        """The cleaned form as a request body for specs.build_spec (an upload becomes a
        data: URL, so it is checked exactly like one sent over the API): the first image
        as `image_url`, the end frame as `end_image_url`."""
        skip = ("image", "image_url", "end_image", "end_image_url", "remix_of", "source_image",
                *TAKES_FIELDS)  # fmt: skip
        data: dict[str, object] = {k: v for k, v in self.cleaned_data.items() if k not in skip}
        for upload_field, url_field in (("image", "image_url"), ("end_image", "end_image_url")):
            upload: UploadedFile | None = self.cleaned_data.get(upload_field)
            if upload is not None:
                data[url_field] = upload_data_url(upload)
            elif self.cleaned_data.get(url_field):
                data[url_field] = self.cleaned_data[url_field]
        if data.get("seed") is None:
            data["seed"] = -1
        return data
