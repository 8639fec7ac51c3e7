"""The Space: ICD-10-CM / CIE-10 code search in six languages. The app lives in `cie10.space_app`; this file
only loads it (once, at start-up) and serves it.

Space variables (all optional): `CIE10_ORG` (default `cie10`), `CIE10_SPACE_REVISION` (a tag such as `v1.0`,
default `main`), `CIE10_SPACE_MODEL`, `CIE10_SPACE_RERANKER` (`none` to disable), `CIE10_SPACE_CODES`, and
`HF_ENDPOINT` for another Hub. Run it locally with `cie10 serve` (or `python space/app.py`).
"""

from __future__ import annotations

import logging
import os

from cie10.space_app import SpaceBackend, SpaceConfig, build_app, serve

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

backend = SpaceBackend.load(SpaceConfig.from_env())
demo = build_app(backend)

if __name__ == "__main__":
    # on a Space, GRADIO_SERVER_NAME is 0.0.0.0; elsewhere the page stays on loopback
    serve(
        demo,
        host=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
    )
