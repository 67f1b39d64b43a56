"""Pure media work: encoding (H.264/AAC, posters, previews, spritesheets), images, audio.
Bytes and frames in, files out; no Django, no engines."""
