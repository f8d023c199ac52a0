"""The genome in: a FASTA genome read with pysam, regions from BED and narrowPeak files, variants from VCF."""

from .fasta import Genome
from .regions import Regions, RegionSequences, read_bed, regions_onehot

__all__ = ["Genome", "RegionSequences", "Regions", "read_bed", "regions_onehot"]
