"""Heating bills, late fees, arrears and WeChat Pay payments (DESIGN §3).

Money is integer fen everywhere; areas are Decimal m²; every rounding is half up to a fen.
"""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal


def _round_fen(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def bill_amount_fen(area_m2: Decimal, unit_price_fen: int, discount_fen: int = 0) -> int:
    """Area × unit price − discount, rounded half up to a fen, never below zero."""
    gross = _round_fen(Decimal(area_m2) * unit_price_fen)
    return max(gross - discount_fen, 0)
