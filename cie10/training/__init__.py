"""cie10.training"""
