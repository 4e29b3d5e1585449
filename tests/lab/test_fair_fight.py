"""lab/fair_fight.sh is the record of how the fair fight ran: it parses, and the schedule it
trains the other losses on is the one the benchmark page names as tuned."""
import re
import subprocess
from pathlib import Path

from lab import benchmark_page

SCRIPT = Path(__file__).resolve().parents[2] / 'lab' / 'fair_fight.sh'


def test_the_script_parses():
    subprocess.run(['bash', '-n', str(SCRIPT)], check=True)


def test_the_tuned_schedule_is_the_pages():
    text = SCRIPT.read_text()
    tag = re.search(r'^T=(\S+)', text, re.M).group(1)
    warm, lr, alpha = re.fullmatch(r'w(\d+)-lr([\d.]+)-a([\d.]+)', tag).groups()
    assert f'TUNED=$(sweep {warm} {lr} {alpha})' in text
    assert tag == benchmark_page.TUNED
    assert f'$T-lam{benchmark_page.AFL_LAM0}' in text
    for suffix, _ in benchmark_page.CONTROLS:
        assert f'"{suffix[1:]} ' in text, suffix
