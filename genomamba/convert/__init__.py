"""Conversion between genomamba model directories and other projects' checkpoints
(Caduceus's Hugging Face format): ``genomamba convert``."""
