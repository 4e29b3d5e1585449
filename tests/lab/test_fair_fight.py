"""lab/fair_fight.sh is the record of how the fair fight ran: it parses, and the schedule it
trains the other losses on is the one the benchmark page names as tuned."""
import os
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


def test_report_takes_each_rows_finished_seeds_only(tmp_path):
    """`report` rebuilds a row from the seeds whose run wrote its finished marker; a row with
    none (here AFL's, interrupted) is left out rather than failing the whole report."""
    tuned = benchmark_page.TUNED
    runs = tmp_path / 'runs'
    finished = runs / 'test' / f'focal_{tuned}' / 'seed1'
    finished.mkdir(parents=True)
    (finished / 'run_finished.json').write_text('{}')
    (runs / 'test' / f'afl_{tuned}-lam{benchmark_page.AFL_LAM0}' / 'seed0').mkdir(parents=True)
    calls = tmp_path / 'calls'
    python = tmp_path / 'python'  # records each call instead of running it
    python.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    python.chmod(0o755)
    env = {**os.environ, 'PYTHON': str(python), 'RUNS': str(runs), 'DATA': str(tmp_path)}
    subprocess.run(['bash', str(SCRIPT), 'report'], env=env, check=True)
    lines = calls.read_text().splitlines()
    compared = [line for line in lines if 'compare_losses.py' in line]
    assert len(compared) == 1, compared
    assert re.search(rf'--split test .*--losses focal --seeds 1 --tag {tuned} .*--report-only',
                     compared[0]), compared[0]
    assert lines[-1] == 'tools/benchmark_page.py'


def test_the_afl_rows_keep_the_class_weights_they_ran_with():
    """The afl rows ran when AdaptiveFocalLoss defaulted to beta 0.99; its default is now 0
    (the damped rows), so every afl call pins beta 0.99 and the script reruns what ran."""
    text = SCRIPT.read_text()
    assert re.search(r'^AFL="\$L\.beta=0\.99 \$L\.lam0"$', text, re.M)
    calls = [line for line in text.splitlines() if re.match(r'\s*(for .*do )?compare \S+ '
                                                             r'\S+ afl ', line)]
    assert len(calls) == 5 and all('$AFL=' in line for line in calls), calls
