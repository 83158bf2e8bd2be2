"""The serving path stands without the measuring tools (virnucpro_runtime.measure)."""
import subprocess
import sys


def test_serving_modules_import_nothing_from_measure():
    code = (
        "import sys\n"
        "from virnucpro_runtime import compiled, engine, legacy, models_api, serve, synthetic\n"
        "print(sorted(m for m in sys.modules if m.startswith('virnucpro_runtime.measure')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
