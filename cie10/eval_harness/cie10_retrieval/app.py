"""The metric Space: evaluate's standard widget around the cie10_retrieval module in this folder."""

import evaluate
from evaluate.utils import launch_gradio_widget

module = evaluate.load("cie10_retrieval.py")
launch_gradio_widget(module)
