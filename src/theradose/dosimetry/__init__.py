"""Absorbed-dose calculation: organ-level MIRD (``organ``, ``sphere``, ``svalues``, ``uncertainty``)."""
