"""The data factory behind `cie10 generate`: clinical mentions of ICD-10-CM codes in six languages.

Backends (`terminology` offline, `gemini`, any `openai`-compatible server) produce candidate (mention, code)
pairs; curation filters them with counted reasons; splits go by 3-character category; the result is a Hub
dataset folder `<org>/cie10-synth` with per-language configs. `pipeline.generate(config)` runs it top to bottom;
`docs/generation.md` shows how.
"""
