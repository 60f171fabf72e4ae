"""Code-style contracts that a linter alone does not enforce."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CODE_DIRS = ("src", "tests", "benchmarks")
MAX_MODULE_LINES = 520  # "about 500": one concern per module


def _python_files() -> list[Path]:
    files = [ROOT / "app.py"]
    for folder in CODE_DIRS:
        files.extend(sorted((ROOT / folder).rglob("*.py")))
    return files


def test_ruff_formats_everything_without_opt_outs() -> None:
    marker = "# fmt: " + "skip"  # split so this file does not match itself
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in _python_files()
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if marker in line or ("# fmt: " + "off") in line
    ]
    assert offenders == [], f"formatter opt-outs left in: {offenders}"


def test_library_modules_stay_small() -> None:
    too_long = {
        str(path.relative_to(ROOT)): n
        for path in sorted((ROOT / "src" / "hte").rglob("*.py"))
        if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert too_long == {}, f"modules over {MAX_MODULE_LINES} lines: {too_long}"
