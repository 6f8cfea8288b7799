"""A scored output replaces its whole set: the earlier run's summary and plot go just before
the new VCF (or TSV) is renamed into place, so a new file never sits beside an old summary
(the summary, written last, marks the set finished); a part leaves them alone."""

import pysam
import pytest

from genomamba.score.output import open_writer


def _header():
    h = pysam.VariantHeader()
    h.add_line("##contig=<ID=c1,length=100>")
    return h


@pytest.mark.parametrize("name", ["out.vcf.gz", "out.tsv"])
def test_an_output_drops_the_earlier_summary_and_plot_when_it_lands(tmp_path, name):
    old = [tmp_path / "out.summary.json", tmp_path / "out.scores.png"]
    for p in old:
        p.write_text("earlier run")
    writer = open_writer(str(tmp_path / name), _header())
    assert all(p.exists() for p in old)  # nothing goes before the new file is complete
    writer.close()
    assert (tmp_path / name).exists() and not any(p.exists() for p in old)


def test_a_failed_output_keeps_the_earlier_set(tmp_path):
    old = tmp_path / "out.summary.json"
    old.write_text("earlier run")
    writer = open_writer(str(tmp_path / "out.vcf.gz"), _header())
    writer.abort()
    assert old.read_text() == "earlier run" and not (tmp_path / "out.vcf.gz").exists()


def test_a_part_leaves_the_summary_alone(tmp_path):
    old = tmp_path / "out.summary.json"
    old.write_text("earlier run")
    writer = open_writer(str(tmp_path / "out.bcf"), _header(), index=False)
    writer.close()
    assert old.read_text() == "earlier run"
