"""cie10.model_cards"""
