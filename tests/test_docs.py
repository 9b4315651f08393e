"""The documentation site: it builds with no warning, the API reference is generated from the
docstrings, and every page the README links to exists."""
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_site_builds_strictly_with_the_api_reference(tmp_path):
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d",
                        str(tmp_path / "site")], cwd=ROOT, capture_output=True, text=True,
                       env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    api = (tmp_path / "site" / "api" / "index.html").read_text()
    for name in ("VLModel", "Attribution", "LocalisationMetric", "UnknownNameError", "InputError"):
        assert name in api, name


def test_every_page_the_readme_links_exists_and_is_in_the_site_nav():
    readme = (ROOT / "README.md").read_text()
    nav = (ROOT / "mkdocs.yml").read_text()
    links = re.findall(r"\]\((docs/[^)#]+)\)", readme)
    assert links
    for link in links:
        assert (ROOT / link).is_file(), link
        assert Path(link).name in nav, link
