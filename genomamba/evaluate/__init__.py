"""``genomamba evaluate``: how well a score separates labelled variants.

- ``metrics``: AUROC (exact with ties: the Mann-Whitney U with half credit), AUPRC,
  ROC / precision-recall curves, stratified bootstrap CIs, per-substitution AUROCs;
- ``labels``: reading the scored variants (VCF or score TSV) and their labels
  (a LABELS.tsv or an INFO field);
- ``kmer``: the baseline, a masked-centre k-mer model fitted on the reference;
- ``report``: metrics.json, report.md and roc.png;
- ``commands``: the subcommand.
"""
