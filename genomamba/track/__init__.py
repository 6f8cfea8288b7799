"""``genomamba track``: a masked-LM score at every position of a genome or of BED regions,
written as bigWig (and optionally every ALT's LLR as a tabix-indexed TSV)."""
