from __future__ import annotations

from django.urls import path

from generations.api import batches, estimate, extend, sequences, verify, videogenapi

urlpatterns = [
    path("generate", videogenapi.generate, name="api-generate"),
    path("estimate", estimate.estimate, name="api-estimate"),
    path("status/<str:generation_id>", videogenapi.status, name="api-status"),
    path("generations", videogenapi.generations, name="api-generations"),
    path("generations/<str:generation_id>/cancel", videogenapi.cancel, name="api-cancel"),
    path("generations/<str:generation_id>/extend", extend.extend, name="api-extend"),
    path("sequences", sequences.sequences_view, name="api-sequences"),
    path("sequences/<str:sequence_id>", sequences.sequence, name="api-sequence"),
    path(
        "sequences/<str:sequence_id>/cancel", sequences.sequence_cancel, name="api-sequence-cancel"
    ),
    path("batches", batches.batches_view, name="api-batches"),
    path("batches/<str:batch_id>", batches.batch, name="api-batch"),
    path("batches/<str:batch_id>/cancel", batches.cancel, name="api-batch-cancel"),
    path("batches/<str:batch_id>/pick", batches.pick, name="api-batch-pick"),
    path("verify", verify.verify, name="api-verify"),
    path("user", videogenapi.user, name="api-user"),
    path("models", videogenapi.models, name="api-models"),
    path("video/<str:generation_id>", videogenapi.video, name="api-video"),
    path("thumbnail/<str:generation_id>", videogenapi.thumbnail, name="api-thumbnail"),
    path("preview/<str:generation_id>", videogenapi.preview, name="api-preview"),
    path("spritesheet/<str:generation_id>", videogenapi.spritesheet, name="api-spritesheet"),
]
