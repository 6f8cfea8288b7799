"""RC-equivariant bidirectional Mamba (Caduceus design) for DNA.

    from genomamba.model import GenoMambaConfig, GenoMambaForMaskedLM, GenoMambaForSequenceClassification
"""

from genomamba.model.config import GenoMambaConfig
from genomamba.model.mixer import BiMamba, MambaMixer
from genomamba.model.model import (
    GenoMambaBackbone,
    GenoMambaForMaskedLM,
    GenoMambaForSequenceClassification,
    RMSNorm,
)

__all__ = [
    "GenoMambaConfig",
    "GenoMambaForMaskedLM",
    "GenoMambaForSequenceClassification",
    "GenoMambaBackbone",
    "BiMamba",
    "MambaMixer",
    "RMSNorm",
]
