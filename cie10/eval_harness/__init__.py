"""cie10.eval_harness"""
