"""Running trained models on new sequences: ``genomamba embed`` (features of a pretrained
masked LM, to HDF5) and ``genomamba predict`` (a fine-tuned classifier's class
probabilities, to TSV), on BED regions of a genome, FASTA records or TSV sequences."""
