"""The `openai` backend: any OpenAI-compatible `/chat/completions` endpoint (vLLM, llama.cpp server, Ollama).

Set `base_url` (e.g. `http://127.0.0.1:8000/v1`) and `model` (the served name); `OPENAI_API_KEY` is sent as a
bearer token when set. The reply schema goes as `response_format: json_schema`, which vLLM, llama.cpp and Ollama
turn into constrained decoding.
"""

from __future__ import annotations

import os
from typing import Any

from cie10.errors import ConfigError
from cie10.generation.cache import Completion, Usage
from cie10.generation.config import GenerationConfig
from cie10.generation.gemini import RETRYABLE_STATUS
from cie10.generation.llm import LLMBackend, RejectedError, RetryableError
from cie10.generation.prompts import MentionsReply, Prompt


def strict_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The pydantic JSON schema with `additionalProperties: false` on every object (strict structured output)."""
    if isinstance(schema, dict):
        fixed = {key: strict_schema(value) for key, value in schema.items()}
        if fixed.get("type") == "object":
            fixed["additionalProperties"] = False
        return fixed
    if isinstance(schema, list):
        return [strict_schema(item) for item in schema]
    return schema


class OpenAIBackend(LLMBackend):
    """Chat completions over HTTP with httpx."""

    name = "openai"

    def __init__(self, config: GenerationConfig) -> None:
        super().__init__(config)
        self.url = (config.base_url or "").rstrip("/") + "/chat/completions"
        self.api_key = os.environ.get(config.api_key_variable, "").strip()
        self._client: Any = None

    def check(self) -> None:
        if not self.config.base_url:
            raise ConfigError(
                "the openai backend needs --base_url, the OpenAI-compatible endpoint (vLLM: http://127.0.0.1:8000/v1,"
                " llama.cpp server: http://127.0.0.1:8080/v1, Ollama: http://127.0.0.1:11434/v1)"
            )

    def _http(self) -> Any:
        import httpx

        if self._client is None:  # created inside the running event loop
            self._client = httpx.AsyncClient(timeout=self.config.request_timeout)
        return self._client

    def body(self, prompt: Prompt) -> dict[str, Any]:
        """The request JSON."""
        return {
            "model": self.model,
            "messages": [{"role": "system", "content": prompt.system}, {"role": "user", "content": prompt.user}],
            "temperature": self.config.temperature,
            "response_format": {
                "type": "json_schema",
                "json_schema": {
                    "name": "MentionsReply",
                    "schema": strict_schema(MentionsReply.model_json_schema()),
                    "strict": True,
                },
            },
        }

    async def complete(self, prompt: Prompt) -> Completion:
        import httpx

        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        try:
            response = await self._http().post(self.url, json=self.body(prompt), headers=headers)
        except httpx.HTTPError as error:
            raise RetryableError(f"network: {type(error).__name__}: {error}", unreachable=True) from error
        status = response.status_code
        if status in RETRYABLE_STATUS or status >= 500:
            hint = response.headers.get("retry-after")
            raise RetryableError(f"HTTP {status}", float(hint) if hint and hint.isdigit() else None)
        if status in (401, 403):
            raise ConfigError(f"{self.url} refused the request (HTTP {status}): check {self.config.api_key_variable}")
        if status == 404:
            raise ConfigError(f"{self.url} answered 404: check --base_url and the model name {self.model!r}")
        if status >= 400:
            raise RejectedError(f"HTTP {status}: {response.text[:200]}")
        try:
            data = response.json()
            choice = data["choices"][0]
            text = choice["message"].get("content") or ""
        except (ValueError, KeyError, IndexError, TypeError) as error:
            raise RejectedError(f"not a chat completion: {response.text[:200]}") from error
        usage = data.get("usage") or {}
        return Completion(
            text=text,
            finish_reason=str(choice.get("finish_reason") or ""),
            usage=Usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0), 0),
            model_version=str(data.get("model") or ""),
        )

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
