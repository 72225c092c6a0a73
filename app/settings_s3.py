"""The S3 part of qthumb's settings: endpoints, credentials an operator lends (``S3Grant``),
retries and part size. Part of the one settings object (``app.settings.Settings`` inherits
them); apart only to keep each file readable."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

CommaList = Annotated[list[str], NoDecode]


class S3Grant(BaseModel):
    """One entry of ``QTHUMB_S3_CREDENTIALS``: the key and secret qthumb signs with for an
    endpoint (or one bucket of it), or ``"ambient"``: the process's own identity (environment,
    ``~/.aws``, an instance or pod role), which qthumb otherwise never lends to a query;
    ``api_keys``: the API keys whose queries may use it (absent: every key)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = ""
    secret: str = ""
    ambient: bool = False
    api_keys: tuple[str, ...] | None = None

    @model_validator(mode="before")
    @classmethod
    def _ambient_word(cls, value: object) -> object:
        return {"ambient": True} if value == "ambient" else value

    @model_validator(mode="after")
    def _one_identity(self) -> S3Grant:
        if self.ambient == bool(self.key and self.secret) or bool(self.key) != bool(self.secret):
            raise ValueError('an entry is {"key": …, "secret": …} or "ambient"')
        return self

    def allows(self, api_key: str | None) -> bool:
        """``None``: the operator (qthumb's own store, the offline commands)."""
        return api_key is None or self.api_keys is None or api_key in self.api_keys


class S3Settings(BaseSettings):
    """How qthumb reaches S3 (``QTHUMB_`` variables, as every setting)."""

    model_config = SettingsConfigDict(env_prefix="QTHUMB_", extra="ignore")

    s3_insecure_endpoints: CommaList = Field(
        default_factory=list,
        description="host:port S3 endpoints reached over plain HTTP (e.g. a MinIO on "
        "127.0.0.1:9000); every other endpoint is HTTPS.",
    )
    s3_credentials: dict[str, S3Grant] = Field(
        default_factory=dict,
        description="JSON map of S3 endpoint (host:port, or host:port/bucket for one bucket) to"
        ' the credentials for s3:// sources and destinations that carry none: {"key": …,'
        ' "secret": …}, optionally "api_keys": [...] (the keys whose queries may use them), or'
        ' "ambient" (the process\'s own AWS identity; never lent otherwise), e.g.'
        ' {"127.0.0.1:9000": {"key": "K", "secret": "S"}}.',
    )
    s3_max_attempts: int = Field(
        default=4, ge=1, description="Tries of one S3 request on timeouts and 5xx (backoff)."
    )
    s3_connect_timeout: float = Field(default=10.0, gt=0, description="Seconds to reach S3.")
    s3_read_timeout: float = Field(
        default=60.0, gt=0, description="Seconds without an answer from S3 before a retry."
    )
    s3_multipart_threshold: int = Field(
        default=8 * 1024 * 1024,
        ge=5 * 1024 * 1024,
        description="Bytes above which uploads are multipart (also the part size).",
    )

    @field_validator("s3_credentials")
    @classmethod
    def _grant_places(cls, value: dict[str, S3Grant]) -> dict[str, S3Grant]:
        return {place.lower().strip("/"): grant for place, grant in value.items()}

    def s3_grant(self, netloc: str, bucket: str, api_key: str | None) -> S3Grant | None:
        """The entry of ``s3_credentials`` for ``bucket`` at ``netloc`` that ``api_key`` may
        use: the bucket's own first, then the endpoint's."""
        for place in (f"{netloc}/{bucket}".lower(), netloc.lower()):
            grant = self.s3_credentials.get(place)
            if grant is not None and grant.allows(api_key):
                return grant
        return None
