"""Datasets: the registry (``datasets.get(name)``), the prepared-data contract, fetching, one module per dataset."""

from mobopt.datasets.prepared import SPLITS, TREE, load_meta, load_split, num_outputs, split_files  # noqa: F401
from mobopt.datasets.registry import DATASETS, Dataset, get  # noqa: F401
