"""The `diffusers` engine: FramePack, LTX-Video and Wan pipelines, run on a GPU worker."""
