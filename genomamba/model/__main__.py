"""``python -m genomamba.model``: parameter counts of the default model and its ablations."""

from __future__ import annotations

import dataclasses

from genomamba.model import GenoMambaConfig, GenoMambaForMaskedLM

#: Caduceus-PS / -Ph 131k (d_model 256, n_layer 16), as reported by Schiff et al. (2024)
REFERENCE_PARAMS = 7.7e6


def main():
    base = GenoMambaConfig()
    variants = {
        "ps (default, Caduceus-PS)": base,
        "ph (Caduceus-Ph)": dataclasses.replace(base, rc_mode="ph"),
        "uni (unidirectional Mamba)": dataclasses.replace(base, rc_mode="none", bidirectional=False),
    }
    print(f"d_model {base.d_model}, n_layer {base.n_layer}, d_state {base.d_state}, "
          f"expand {base.expand}, d_conv {base.d_conv}")
    for name, config in variants.items():
        n = GenoMambaForMaskedLM(config).num_parameters()
        print(f"{name:28s} {n:>12,d} parameters ({n / REFERENCE_PARAMS:.3f} x 7.7 M)")


if __name__ == "__main__":
    main()
