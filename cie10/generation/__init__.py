"""cie10.generation"""
