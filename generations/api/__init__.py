"""The API surfaces: one module per wire format (VideoGenAPI, Framepack, OpenAI, the OpenAPI
document), and what they share (auth and errors, rate limits, Idempotency-Key)."""
