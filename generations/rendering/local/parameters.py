"""What the `local` engine does with each request parameter: shown in the model listing
(`GET /api/v1/models`) and the API docs. A module of its own so that the web process can
list it without importing the renderer (numpy, OpenCV, PyAV)."""

from __future__ import annotations

PARAMETER_USE: dict[str, str] = {
    "prompt": "used: its words choose the scene (elements, time of day, colours, moods, pace) "
    "for text-to-video, the camera move for image-to-video ('zoom in', 'pan left', 'slow', ...), "
    "and the sound when audio_prompt is empty",
    "seed": "used: places the composition, picks the camera move when the prompt names none, "
    "and varies the sound; the same seed and parameters give identical frames",
    "duration": "used: the clip lasts duration x fps frames (unless num_frames is given)",
    "num_frames": "used: the exact number of frames rendered",
    "resolution": "used: the short side of the frame (480, 720, 1080 or 2160 pixels)",
    "aspect_ratio": "used: with resolution, the exact frame size",
    "mode": "used: text-to-video paints a scene; image-to-video animates image_url",
    "image_url": "used (image-to-video): the first frame is the image cover-cropped to the frame",
    "end_image_url": "used: the last frame is this image cover-cropped to the frame; the camera "
    "travels (the move the prompt or seed picks) from the first image, or through the painted "
    "scene, on into it while it dissolves in",
    "camera_fixed": "used (image-to-video, and with an end image): true keeps the framing still "
    "(only light, colour and grain breathe; with an end image, a still dissolve); false moves "
    "the camera. Text-to-video without an end image ignores it",
    "add_audio": "used: true adds a 48 kHz stereo AAC sound bed; false leaves no audio stream",
    "audio_prompt": "used: its words choose the sounds (rain, ocean, wind, fire, birds, city, "
    "space, music; ambient otherwise); the prompt is used when it is empty",
    "style": "used: its words are read together with the prompt's (e.g. 'neon', 'misty')",
    "negative_prompt": "accepted and recorded, ignored: a procedural engine has nothing to "
    "steer away from",
    "cfg_scale": "accepted and recorded, ignored: there is no diffusion guidance",
    "guidance_scale": "accepted and recorded, ignored: there is no diffusion guidance",
    "enable_safety_checker": "not used by the engine; the server screens the prompt before the "
    "job (and the frames, when an image classifier is configured)",
}
