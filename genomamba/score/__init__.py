"""Variant scoring: ``genomamba score`` (zero-shot LLR, embedding distance, fine-tuned head)."""
