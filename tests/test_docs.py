"`make docs` renders every notebook to `_docs/`, and a rendered page opens in headless Chromium with its figures."
import shutil, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).parents[1]
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture(scope="module")
def site():
    out = subprocess.run([sys.executable, ".ci/docs.py"], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    return ROOT / "_docs"


@pytest.mark.slow
def test_every_notebook_has_a_page(site):
    pages = {p.stem for p in site.glob("*.html")}
    assert {p.stem for p in (ROOT / "nbs").glob("*.ipynb")} <= pages
    card = (site / "17_card.html").read_text()
    assert "write_card" in card and "<img" in card  # the API's own docs, and the committed figure
    assert (site / "bench" / "demo.png").is_file()  # the index page's picture travels with the site


@pytest.mark.slow
@pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="needs Debian's chromium and chromium-driver (`make browser`)")
def test_a_rendered_page_shows_its_figures_and_no_error_box(site):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"): opts.add_argument(a)
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    try:
        for page in ("16_evaluate.html", "index.html"):
            driver.get((site / page).as_uri())
            shown = driver.execute_script("return [...document.images].filter(i => i.complete && i.naturalWidth > 100).length")
            assert shown >= 1, f"{page}: no figure loaded"
            boxes = driver.execute_script("return document.querySelectorAll('.cell-output-stderr, .cell-output-error').length")
            assert boxes == 0, f"{page}: {boxes} stderr or error boxes"
            assert "Traceback" not in driver.find_element("tag name", "body").text
        (ROOT / "runs" / "test-artifacts").mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(ROOT / "runs" / "test-artifacts" / "docs-index.png"))
    finally: driver.quit()
