"""The HTTP API: the ASGI app and its middleware, the Qencode endpoints and the rules behind
them (keys, sessions, task tokens), the error classes, uploads, temporary storage, frames on
demand and the operators' endpoints."""
