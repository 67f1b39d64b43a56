"""Tiny random diffusers pipelines, built from configs with no download, for the GPU engine's
tests and bench.

Each builder makes a real pipeline of one family (FramePack, LTX-Video, Wan; text-to-video
or image-to-video) with random weights a few kilobytes large, and tokenizers built in memory
from a small vocabulary (a BPE trained here with `tokenizers`, a unigram list for T5), then
saves it with `save_pretrained`: exactly the kind of folder an operator points
VIDEOGEN_DIFFUSERS_MODELS at. Sizes follow diffusers' own fast tests (tests/pipelines/*/).

Everything heavy is imported inside the functions: this module is importable (and the tests
that use it skip cleanly) where the `gpu` extra is not installed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

# The words the tokenizers learn; anything else falls back to characters (or <unk>).
CORPUS = (
    "a cat walks on the beach at sunset, waves roll in slowly under a pink sky. "
    "a red car drives through a neon city at night in the rain. "
    "dance monkey, a forest with tall trees and birds, static camera, slow zoom in. "
    "blurry low quality distorted ugly watermark text. the quick brown fox jumps over "
    "the lazy dog. mountains, snow, clouds, river, ocean, fire, light, style, anime. "
)
VOCAB_SIZE = 320


def _words() -> list[str]:
    return sorted({w.strip(".,") for w in CORPUS.split() if w.strip(".,")})


def _bpe(*, metaspace: bool) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """A small BPE vocabulary and its merges, trained on CORPUS."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    if metaspace:
        # Llama: words carry a leading "▁" (sentencepiece style).
        tok = Tokenizer(models.BPE(unk_token="<unk>"))
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        specials = ["<pad>", "<unk>", "<s>", "</s>"]
        trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, special_tokens=specials)
    else:
        # CLIP: byte-level alphabet, words end with "</w>".
        tok = Tokenizer(models.BPE(unk_token="<|endoftext|>", end_of_word_suffix="</w>"))
        tok.pre_tokenizer = pre_tokenizers.Whitespace()
        specials = ["<|startoftext|>", "<|endoftext|>"]
        trainer = trainers.BpeTrainer(
            vocab_size=VOCAB_SIZE,
            special_tokens=specials,
            end_of_word_suffix="</w>",
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        )
    tok.train_from_iterator([CORPUS] * 4, trainer=trainer)
    model = json.loads(tok.to_str())["model"]
    merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    return dict(model["vocab"]), [(a, b) for a, b in merges]


def t5_tokenizer() -> Any:
    from transformers import T5Tokenizer

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    letters = sorted(set(CORPUS) - {" "})
    pieces += [(f"▁{w}", -1.0) for w in _words()]
    pieces += [("▁", -2.0)] + [(c, -3.0) for c in letters]
    return T5Tokenizer(vocab=pieces, extra_ids=0)


def llama_tokenizer() -> Any:
    from transformers import LlamaTokenizer

    vocab, merges = _bpe(metaspace=True)
    return LlamaTokenizer(vocab=vocab, merges=merges, pad_token="<pad>")


def clip_tokenizer() -> Any:
    from transformers import CLIPTokenizer

    vocab, merges = _bpe(metaspace=False)
    return CLIPTokenizer(vocab=vocab, merges=merges)


def t5_encoder(vocab_size: int) -> Any:
    from transformers import T5Config, T5EncoderModel

    config = T5Config(
        vocab_size=vocab_size,
        d_model=32,
        d_kv=8,
        d_ff=37,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        pad_token_id=0,
        eos_token_id=1,
    )
    return T5EncoderModel(config)


def ltx(image_to_video: bool = False) -> Any:
    import torch
    from diffusers import (
        AutoencoderKLLTXVideo,
        FlowMatchEulerDiscreteScheduler,
        LTXImageToVideoPipeline,
        LTXPipeline,
        LTXVideoTransformer3DModel,
    )

    torch.manual_seed(0)
    transformer = LTXVideoTransformer3DModel(
        in_channels=8,
        out_channels=8,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=4,
        attention_head_dim=8,
        cross_attention_dim=32,
        num_layers=1,
        caption_channels=32,
    )
    torch.manual_seed(0)
    vae = AutoencoderKLLTXVideo(
        latent_channels=8,
        block_out_channels=(8, 8, 8, 8),
        spatio_temporal_scaling=(True, True, False, False),
        decoder_spatio_temporal_scaling=(True, True, False, False),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1),
        decoder_block_out_channels=(8, 8, 8, 8),
        patch_size=1,
        patch_size_t=1,
        encoder_causal=True,
        decoder_causal=False,
    )
    vae.use_framewise_encoding = False
    vae.use_framewise_decoding = False
    tokenizer = t5_tokenizer()
    torch.manual_seed(0)
    text_encoder = t5_encoder(len(tokenizer))
    cls = LTXImageToVideoPipeline if image_to_video else LTXPipeline
    return cls(
        transformer=transformer,
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
    )


def wan(image_to_video: bool = False) -> Any:
    import torch
    from diffusers import (
        AutoencoderKLWan,
        FlowMatchEulerDiscreteScheduler,
        WanImageToVideoPipeline,
        WanPipeline,
        WanTransformer3DModel,
    )

    torch.manual_seed(0)
    vae = AutoencoderKLWan(
        base_dim=3,
        z_dim=16,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
    )
    torch.manual_seed(0)
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=36 if image_to_video else 16,
        out_channels=16,
        text_dim=32,
        freq_dim=256,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=128,  # covers frames up to 2048 px wide (the GPU bench)
        image_dim=4 if image_to_video else None,
    )
    tokenizer = t5_tokenizer()
    torch.manual_seed(0)
    text_encoder = t5_encoder(len(tokenizer))
    scheduler = FlowMatchEulerDiscreteScheduler(shift=7.0)
    if not image_to_video:
        return WanPipeline(
            transformer=transformer,
            vae=vae,
            scheduler=scheduler,
            text_encoder=text_encoder,
            tokenizer=tokenizer,
        )
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(0)
    image_encoder = CLIPVisionModelWithProjection(
        CLIPVisionConfig(
            hidden_size=4,
            projection_dim=4,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=32,
            intermediate_size=16,
            patch_size=1,
        )
    )
    return WanImageToVideoPipeline(
        transformer=transformer,
        vae=vae,
        scheduler=scheduler,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        image_encoder=image_encoder,
        image_processor=CLIPImageProcessor(crop_size=32, size=32),
    )


def framepack() -> Any:
    import torch
    from diffusers import (
        AutoencoderKLHunyuanVideo,
        FlowMatchEulerDiscreteScheduler,
        HunyuanVideoFramepackPipeline,
        HunyuanVideoFramepackTransformer3DModel,
    )
    from transformers import (
        CLIPTextConfig,
        CLIPTextModel,
        LlamaConfig,
        LlamaModel,
        SiglipImageProcessor,
        SiglipVisionConfig,
        SiglipVisionModel,
    )

    torch.manual_seed(0)
    transformer = HunyuanVideoFramepackTransformer3DModel(
        in_channels=4,
        out_channels=4,
        num_attention_heads=2,
        attention_head_dim=10,
        num_layers=1,
        num_single_layers=1,
        num_refiner_layers=1,
        patch_size=2,
        patch_size_t=1,
        guidance_embeds=True,
        text_embed_dim=16,
        pooled_projection_dim=8,
        rope_axes_dim=(2, 4, 4),
        image_condition_type=None,
        has_image_proj=True,
        image_proj_dim=32,
        has_clean_x_embedder=True,
    )
    torch.manual_seed(0)
    vae = AutoencoderKLHunyuanVideo(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        down_block_types=("HunyuanVideoDownBlock3D",) * 4,
        up_block_types=("HunyuanVideoUpBlock3D",) * 4,
        block_out_channels=(8, 8, 8, 8),
        layers_per_block=1,
        act_fn="silu",
        norm_num_groups=4,
        scaling_factor=0.476986,
        spatial_compression_ratio=8,
        temporal_compression_ratio=4,
        mid_block_add_attention=True,
    )
    tokenizer = llama_tokenizer()
    tokenizer_2 = clip_tokenizer()
    torch.manual_seed(0)
    text_encoder = LlamaModel(
        LlamaConfig(
            bos_token_id=2,
            eos_token_id=3,
            pad_token_id=0,
            hidden_size=16,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            vocab_size=len(tokenizer),
            hidden_act="gelu",
        )
    )
    torch.manual_seed(0)
    text_encoder_2 = CLIPTextModel(
        CLIPTextConfig(
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
            hidden_size=8,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            vocab_size=len(tokenizer_2),
            hidden_act="gelu",
            projection_dim=32,
        )
    )
    torch.manual_seed(0)
    image_encoder = SiglipVisionModel(
        SiglipVisionConfig(
            hidden_size=32,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            image_size=30,
            patch_size=2,
        )
    )
    return HunyuanVideoFramepackPipeline(
        transformer=transformer,
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        text_encoder_2=text_encoder_2,
        tokenizer_2=tokenizer_2,
        image_encoder=image_encoder,
        feature_extractor=SiglipImageProcessor(size={"height": 30, "width": 30}),
    )


# What each tiny pipeline needs in videogen.json beside it (see generations/engines/
# diffusers_config.py): small latent windows and a prompt template the tiny tokenizer can
# crop; the real checkpoints use the pipelines' defaults.
TINY_OPTIONS: dict[str, dict[str, Any]] = {
    "framepack": {
        "latent_window_size": 2,
        "call": {"prompt_template": {"template": "{}", "crop_start": 0}},
        "max_sequence_length": 16,
    },
    "ltx": {"max_sequence_length": 16},
    "wan": {"max_sequence_length": 16},
}

BUILDERS: dict[str, Callable[[], Any]] = {
    "framepack": framepack,
    "ltx-t2v": ltx,
    "ltx-i2v": lambda: ltx(image_to_video=True),
    "wan-t2v": wan,
    "wan-i2v": lambda: wan(image_to_video=True),
}


def save(name: str, folder: Path, **options: Any) -> Path:
    """Build the tiny pipeline `name` (a BUILDERS key), save it into `folder` with the
    videogen.json that suits it (plus `options`), and return the folder."""
    pipe = BUILDERS[name]()
    pipe.save_pretrained(folder)
    family = name.split("-")[0]
    (folder / "videogen.json").write_text(json.dumps(TINY_OPTIONS[family] | options))
    return folder
