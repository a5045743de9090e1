"""JupyterLab as a user meets it: `make lab` started on a loopback port, opened in headless Chromium (Selenium), the
train notebook shown, a literate notebook run with no error box, saved clean by nbdev's hook; a screenshot is kept."""
import json, os, secrets, shutil, signal, socket, subprocess, sys, time, urllib.request
from pathlib import Path
import pytest

ROOT = Path(__file__).parents[1]
ARTIFACTS = Path(os.environ.get("NYNORSK_TEST_ARTIFACTS", ROOT / "runs" / "test-artifacts"))
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
LITERATE = "08_vocab.ipynb"  # the literate notebook run in the browser (it renders a table)
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="needs Debian's chromium and chromium-driver (.ci/run installs them)")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    "`make lab` on a free loopback port with a token; every process it started is stopped afterwards."
    port, token = free_port(), secrets.token_hex(16)
    home = tmp_path_factory.mktemp("lab")
    log = home / "lab.log"
    # a settings folder of the test's own: every cell rendered (Lab 4 draws only visible ones), so every output is checked
    tracker = home / "settings" / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True)
    tracker.write_text(json.dumps({"windowingMode": "none"}))
    args = (f"--no-browser --port={port} --ServerApp.ip=127.0.0.1 --IdentityProvider.token={token} "
            f"--LabApp.expose_app_in_browser=True --ServerApp.port_retries=0 --LabApp.user_settings_dir={home / 'settings'}")
    with open(log, "w") as out:
        proc = subprocess.Popen(["make", "-s", "lab", f"LAB_ARGS={args}"], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as r:
                    if r.status == 200: break
            except OSError: pass
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.time() < deadline, "JupyterLab did not start: " + log.read_text()[-3000:]
            time.sleep(0.5)
        yield base, token, log
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try: proc.wait(20)
        except subprocess.TimeoutExpired: os.killpg(proc.pid, signal.SIGKILL); proc.wait()


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"): opts.add_argument(a)
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    try: yield driver
    finally: driver.quit()


def wait_for(driver, script: str, timeout: float = 90, every: float = 0.5):
    "Poll a JavaScript expression until it is truthy."
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = driver.execute_script(f"return !!({script})")
        if value: return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for: {script}")


def open_notebook(driver, base, token, path):
    driver.get(f"{base}/lab/tree/{path}?reset&token={token}")
    wait_for(driver, "window.jupyterapp && document.querySelectorAll('.jp-Notebook .jp-Cell').length > 3")
    wait_for(driver, f"window.jupyterapp.shell.currentWidget && window.jupyterapp.shell.currentWidget.context"
                     f" && window.jupyterapp.shell.currentWidget.context.path === {json.dumps(path)}")


def test_lab_opens_at_the_repository_root(lab):
    base, token, log = lab
    with urllib.request.urlopen(f"{base}/api/contents?token={token}", timeout=10) as r:
        names = {c["name"] for c in json.load(r)["content"]}
    assert {"README.md", "nbs", "nynorsk_asr", "Makefile"} <= names  # the root, not nbs/: runs/ and README are browsable
    if os.geteuid() == 0: assert "--allow-root" in subprocess.run(["make", "-n", "lab"], cwd=ROOT, capture_output=True, text=True).stdout


def test_train_notebook_and_a_literate_notebook_in_the_browser(lab, browser):
    base, token, _ = lab
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    # the literate notebook is run and saved as a copy inside the Lab's root (runs/ is not tracked): nbs/ is never written
    copy = ROOT / "runs" / "lab-copy" / LITERATE
    copy.parent.mkdir(parents=True, exist_ok=True); shutil.copy(ROOT / "nbs" / LITERATE, copy)
    rel = copy.relative_to(ROOT).as_posix()
    before = {p: p.read_bytes() for p in (ROOT / "nbs").glob("*.ipynb")}
    open_notebook(browser, base, token, "nbs/train.ipynb")
    text = browser.execute_script("return document.querySelector('.jp-Notebook').innerText")
    assert "Train a Nynorsk speech recogniser" in text and "final_eval_split" in text  # prose and the parameters cell
    browser.save_screenshot(str(ARTIFACTS / "lab-train.png"))

    open_notebook(browser, base, token, rel)
    wait_for(browser, "window.jupyterapp.shell.currentWidget.sessionContext.session"
                      " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel", timeout=60)
    browser.execute_script("window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs')")
    cells = "window.jupyterapp.shell.currentWidget.content.model.cells"
    wait_for(browser, f"[...Array({cells}.length).keys()].every(i => !{cells}.get(i).executionCount)", timeout=30)
    browser.execute_script("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    code_cells = browser.execute_script("return document.querySelectorAll('.jp-Notebook .jp-CodeCell').length")
    wait_for(browser, f"[...Array({cells}.length).keys()].map(i => {cells}.get(i))"
                      ".filter(c => c.type === 'code').every(c => c.executionCount)"
                      " && window.jupyterapp.shell.currentWidget.sessionContext.kernelDisplayStatus === 'idle'", timeout=180)
    in_model = browser.execute_script(
        f"const c = {cells}; return [...Array(c.length).keys()].map(i => c.get(i)).filter(c => c.type === 'code')"
        ".flatMap(c => c.outputs.toJSON()).filter(o => o.output_type === 'error' || o.name === 'stderr').length")
    errors = browser.execute_script(
        "return [...document.querySelectorAll('.jp-OutputArea-output[data-mime-type=\"application/vnd.jupyter.stderr\"]')]"
        ".map(e => e.innerText.slice(0, 300))")
    outputs = browser.execute_script("return document.querySelectorAll('.jp-OutputArea-output').length")
    browser.save_screenshot(str(ARTIFACTS / f"lab-{copy.stem}.png"))
    tables = browser.execute_script("return document.querySelectorAll('.jp-OutputArea-output table').length")
    assert code_cells > 5 and outputs >= 3 and tables >= 1, (code_cells, outputs, tables)  # the vocabulary table rendered
    assert errors == [] and in_model == 0, errors
    # saving from Lab goes through nbdev's hook: the file on disk is already clean, so `make test` stays green
    browser.execute_script("window.jupyterapp.commands.execute('docmanager:save')")
    wait_for(browser, "!window.jupyterapp.shell.currentWidget.context.model.dirty", timeout=30)
    saved = copy.read_bytes()
    subprocess.run([str(Path(sys.executable).parent / "nbdev_clean"), "--fname", str(copy)], cwd=ROOT, check=True)
    assert copy.read_bytes() == saved, "the notebook Lab saved was not clean"
    assert "language_info" not in json.loads(saved)["metadata"]
    assert {p: p.read_bytes() for p in (ROOT / "nbs").glob("*.ipynb")} == before, "the test wrote into nbs/"
