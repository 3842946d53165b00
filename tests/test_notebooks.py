"""The committed notebooks: executed, clean, and set up for nbval.

(nbval itself executes them: ``pytest`` collects ``notebooks/*.ipynb``.)
"""
import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / 'notebooks').glob('*.ipynb'))
IGNORE = 'nbval-ignore-output'


def load(path):
    return json.loads(path.read_text(encoding='utf-8'))


def code_cells(nb):
    return [c for c in nb['cells'] if c['cell_type'] == 'code']


def source(cell):
    return ''.join(cell['source'])


def test_the_five_notebooks_are_numbered_in_reading_order():
    names = [p.name for p in NOTEBOOKS]
    assert names == ['01_pretraining_bert.ipynb', '02_snli_dataset_for_bert.ipynb',
                     '03_finetuning_bert.ipynb', '04_exercise_truncation.ipynb',
                     '05_what_bert_learned.ipynb']


@pytest.mark.parametrize('path', NOTEBOOKS, ids=lambda p: p.name)
def test_committed_executed_with_kernel_python3_and_no_volatile_metadata(path):
    nb = load(path)
    assert nb['metadata'] == {'kernelspec': {'display_name': 'Python 3', 'language': 'python',
                                             'name': 'python3'},
                              'language_info': {'name': 'python'}}
    cells = code_cells(nb)
    assert [c['execution_count'] for c in cells] == list(range(1, len(cells) + 1)), \
        'run the notebook top to bottom once (python tools/nbrun.py) before committing'
    for cell in nb['cells']:
        assert not {'execution', 'ExecuteTime', 'collapsed', 'scrolled'} & set(cell['metadata'])
    for cell in cells:
        for output in cell['outputs']:
            assert output['output_type'] != 'error', source(cell)[:200]
            if output['output_type'] == 'stream' and output['name'] == 'stderr':
                pytest.fail(f'warning or error text in {path.name}: '
                            f'{"".join(output["text"])[:300]}')


@pytest.mark.parametrize('path', NOTEBOOKS, ids=lambda p: p.name)
def test_first_code_cell_shows_profile_and_data(path):
    first = code_cells(load(path))[0]
    assert 'select_profile()' in source(first) and 'find_data(' in source(first)
    text = ''.join(''.join(o.get('text', '')) for o in first['outputs'])
    assert text.startswith('profile: ') and '\ndata: ' in text
    assert IGNORE in first['metadata'].get('tags', [])  # it differs by machine


@pytest.mark.parametrize('path', NOTEBOOKS, ids=lambda p: p.name)
def test_cells_with_run_dependent_output_are_not_compared(path):
    # Training, timing and data-dependent cells must be tagged; a compared
    # cell must not print anything that changes with the machine or data.
    run_dependent = re.compile(r'train_ch13|train_bert|Timer\(|find_data|read_snli|'
                               r'load_data_wiki|predict_nli\(net|save_checkpoint')
    for cell in code_cells(load(path)):
        tags = cell['metadata'].get('tags', [])
        if run_dependent.search(source(cell)) and cell['outputs']:
            assert IGNORE in tags, f'{path.name}: tag this cell {IGNORE}:\n{source(cell)[:300]}'


@pytest.mark.parametrize('path', NOTEBOOKS, ids=lambda p: p.name)
def test_learning_is_checked_by_assertion_cells(path):
    cells = code_cells(load(path))
    trains = any(re.search(r'train_ch13\(|train_bert\(', source(c)) for c in cells)
    asserts = [c for c in cells if re.search(r'^\s*assert ', source(c), re.M)]
    if trains:
        assert asserts, f'{path.name} trains but has no assertion cell checking that it learned'
        assert all(IGNORE not in c['metadata'].get('tags', []) for c in asserts)
