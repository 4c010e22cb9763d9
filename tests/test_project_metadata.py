"""The files a newcomer, GitHub and the Snakemake workflow catalog read: LICENSE, CITATION.cff,
.snakemake-workflow-catalog.yml."""

import hashlib
import re
import tomllib

import yaml
from conftest import REPO

import mobopt

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]

#: sha256 of the Apache License 2.0 as the ASF publishes it (https://www.apache.org/licenses/LICENSE-2.0.txt).
APACHE_2_SHA256 = "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"

PAPER_DOI = "10.23939/ujit2024.02.074"


def test_license_is_the_apache_2_text_pyproject_declares():
    assert PYPROJECT["license"] == "Apache-2.0"
    text = (REPO / "LICENSE").read_bytes()
    assert hashlib.sha256(text).hexdigest() == APACHE_2_SHA256, "LICENSE is not the verbatim Apache License 2.0"


def _check_person_or_entity(author, where):
    assert isinstance(author, dict), where
    assert author.get("family-names") or author.get("name"), f"{where}: an author needs family-names or name"


def _check_paper(ref, where):
    for key, kind in {"type": str, "title": str, "authors": list, "journal": str, "year": int, "volume": int,
                      "issue": str, "start": int, "end": int, "doi": str}.items():
        assert isinstance(ref.get(key), kind), f"{where}.{key} should be a {kind.__name__}, not {ref.get(key)!r}"
    assert ref["type"] == "article"
    assert ref["doi"] == PAPER_DOI
    assert (ref["year"], ref["volume"], ref["issue"], ref["start"], ref["end"]) == (2024, 6, "2", 74, 82)
    assert [a["family-names"] for a in ref["authors"]] == ["Chornenkyi", "Kazymyra"]
    for i, author in enumerate(ref["authors"]):
        _check_person_or_entity(author, f"{where}.authors[{i}]")


def test_citation_cff_structure():
    """The keys CFF 1.2.0 requires, with the types its schema gives them, and the paper as preferred citation."""
    cff = yaml.safe_load((REPO / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0"
    for key in ("message", "title", "authors"):
        assert cff.get(key), f"CITATION.cff lacks the required key {key!r}"
    assert cff["type"] == "software"
    for i, author in enumerate(cff["authors"]):
        _check_person_or_entity(author, f"authors[{i}]")
    assert cff["license"] == PYPROJECT["license"]
    assert str(cff["version"]) == PYPROJECT["version"] == mobopt.__version__
    _check_paper(cff["preferred-citation"], "preferred-citation")
    assert len(cff["references"]) == 1
    _check_paper(cff["references"][0], "references[0]")
    assert re.fullmatch(r"10\.\d{4,9}/[-._;()/:A-Za-z0-9]+", PAPER_DOI)


def test_workflow_catalog_file():
    """The layout the Snakemake workflow catalog reads, and what it points at exists."""
    spec = yaml.safe_load((REPO / ".snakemake-workflow-catalog.yml").read_text())
    usage = spec["usage"]
    assert set(usage) <= {"mandatory-flags", "software-stack-deployment", "report"}
    assert set(usage["mandatory-flags"]) == {"desc", "flags"}
    assert isinstance(usage["mandatory-flags"]["desc"], str) and isinstance(usage["mandatory-flags"]["flags"], str)
    assert usage["software-stack-deployment"] == {"conda": True}
    assert usage["report"] is True
    # the catalog's standardized usage also wants every config key described in config/README.md
    assert (REPO / "config/README.md").is_file() and (REPO / "config/config.yaml").is_file()
    for name in re.findall(r"config/\w+\.yaml", usage["mandatory-flags"]["desc"]):
        assert (REPO / name).is_file(), name


def test_supported_pythons_agree():
    """pyproject's requires-python, the Makefile's interpreter choice and ruff's target say the same range."""
    assert PYPROJECT["requires-python"] == ">=3.11,<3.14"
    makefile = (REPO / "Makefile").read_text()
    assert "(3, 11) <= sys.version_info[:2] < (3, 14)" in makefile
    assert "python3.11 python3.12 python3.13" in makefile
    assert tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["ruff"]["target-version"] == "py311"
