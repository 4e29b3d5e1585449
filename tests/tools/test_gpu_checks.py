"""tools/gpu_checks.sh is the one script a lent GPU runs: no GPU here, so check that it parses,
that its Python parts compile, and that every tool, config and option it names exists."""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / 'tools' / 'gpu_checks.sh'


def test_the_script_parses_and_its_python_compiles():
    subprocess.run(['bash', '-n', str(SCRIPT)], check=True)
    text = SCRIPT.read_text()
    snippets = re.findall(r"<<'PY'.*?\n(.*?)\nPY\n", text, re.S)
    assert len(snippets) == 2
    for code in snippets:
        compile(code, str(SCRIPT), 'exec')


def test_every_tool_config_and_option_it_names_exists():
    text = SCRIPT.read_text()
    for tool in set(re.findall(r'tools/\w+\.py', text)):
        assert (ROOT / tool).is_file(), tool
    for config in re.findall(r'configs/\S+?\.py', text):
        if '{' in config:
            head, options, tail = re.match(r'(.*)\{(.*)\}(.*)', config).groups()
            paths = [head + option + tail for option in options.split(',')]
        else:
            paths = [config]
        for path in paths:
            assert (ROOT / path).is_file(), path
    bench_help = subprocess.run([sys.executable, str(ROOT / 'tools/benchmark_losses.py'),
                                 '--help'], capture_output=True, text=True).stdout
    for option in ('--device', '--impls', '--repeats', '--tilings', '--out'):
        assert option in bench_help
