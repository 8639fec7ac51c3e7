"""The code index's approximate scan as one onnxruntime graph: int8 rows times int8 queries, integer accumulation.

numpy has no integer matrix product on BLAS, so a numpy scan of int8 rows converts them to float32 a chunk at a
time; onnxruntime's `MatMulInteger` multiplies int8 rows by the query, itself rounded to 8 bits
(`DynamicQuantizeLinear`), on integer SIMD kernels: about three times faster on one core for ~167k rows.

e5's embeddings share a large common direction (cosines of unrelated texts are 0.7-0.9), and rounding the query
then moves every score by an amount that depends on the row. So the rows are centred first: the scan holds
`row - mean` in int8 (one scale per row) and adds back `query · mean`, the same for every row of a query. Measured
on 7.6k rows of every name of 1,500 codes and 60 CodiEsp train mentions (base model): mean |error| 0.0025
uncentred, 0.00026 centred. The scan only picks a shortlist that is then rescored exactly from the float16 rows;
tests/inference/test_scan.py checks that the exact best codes come out.
"""

from __future__ import annotations

import numpy as np

from cie10.inference.encoder import make_session


class IntegerScan:
    """`scores(queries)` ≈ queries · vectorsᵀ, (queries, rows) float32, from centred int8 rows."""

    def __init__(self, vectors: np.ndarray, threads: int = 1) -> None:
        from onnx import TensorProto, helper, numpy_helper

        from cie10.code_index import quantize_rows

        self.mean = np.asarray(vectors, dtype=np.float32).mean(axis=0)
        parts = [quantize_rows(np.asarray(vectors[s : s + 65536], dtype=np.float32) - self.mean)
                 for s in range(0, len(vectors), 65536)]  # fmt: skip
        rows = np.concatenate([part[0] for part in parts])
        scales = np.concatenate([part[1] for part in parts])
        dimension = rows.shape[1]
        nodes = [
            helper.make_node("DynamicQuantizeLinear", ["queries"], ["q8", "q_scale", "q_zero"]),
            helper.make_node("MatMulInteger", ["q8", "rows", "q_zero"], ["dot"]),
            helper.make_node("Cast", ["dot"], ["dot_f"], to=TensorProto.FLOAT),
            helper.make_node("Mul", ["dot_f", "q_scale"], ["scaled"]),
            helper.make_node("Mul", ["scaled", "scales"], ["scores"]),
        ]
        graph = helper.make_graph(
            nodes,
            "cie10_index_scan",
            [helper.make_tensor_value_info("queries", TensorProto.FLOAT, ["queries", dimension])],
            [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["queries", len(rows)])],
            initializer=[numpy_helper.from_array(np.ascontiguousarray(rows.T), "rows"),
                         numpy_helper.from_array(scales, "scales")],
        )  # fmt: skip
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        self.session = make_session(model.SerializeToString(), threads)
        self.num_rows = len(rows)
        self.nbytes = rows.nbytes + scales.nbytes + self.mean.nbytes

    def scores(self, queries: np.ndarray) -> np.ndarray:
        """(queries, rows) approximate cosines."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        scores = self.session.run(None, {"queries": queries})[0]
        scores += (queries @ self.mean)[:, None]
        return scores
