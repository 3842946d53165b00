"""Execute notebooks in place and strip volatile metadata, for committing them.

    python tools/nbrun.py notebooks/*.ipynb         # run and save outputs
    python tools/nbrun.py --clean-only notebooks/*.ipynb

Runs each notebook top to bottom in a fresh ``python3`` kernel (this
environment's Python), with live plots off so each figure is one output.
The data and runs folders in the saved outputs become ``<data folder>``
and ``<runs folder>``: committed outputs name no machine's paths.
Stops at the first cell that raises, and then leaves that notebook
unchanged. Saved notebooks keep kernel ``python3`` and no timestamps, so
re-running only changes what the code printed.

The profile and data follow the environment (``D2L_NLI_PROFILE``,
``D2L_NLI_DATA``), as for a reader: set them before running.
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

KERNELSPEC = {'display_name': 'Python 3', 'language': 'python', 'name': 'python3'}
LANGUAGE_INFO = {'name': 'python'}
CELL_VOLATILE = ('execution', 'collapsed', 'scrolled', 'ExecuteTime')


def machine_paths():
    """``{path: placeholder}`` for the folders whose names differ by machine."""
    from d2l_nli import get_data_dir, runs_dir

    paths = {}
    for folder, name in ((runs_dir(), '<runs folder>'), (get_data_dir(), '<data folder>')):
        for form in {str(folder), str(Path(folder).resolve())}:
            paths[form.rstrip('/')] = name
    return dict(sorted(paths.items(), key=lambda kv: -len(kv[0])))  # longest first


def _hide(text, paths):
    for path, name in paths.items():
        text = text.replace(path, name)
    return text


def clean(nb, paths=None):
    """Drop run-dependent metadata and machine paths in place; returns the error outputs."""
    nb['metadata'] = {'kernelspec': dict(KERNELSPEC), 'language_info': dict(LANGUAGE_INFO)}
    errors = []
    for cell in nb['cells']:
        meta = cell.setdefault('metadata', {})
        for key in CELL_VOLATILE:
            meta.pop(key, None)
        cell.pop('id', None)
        for output in cell.get('outputs', []):
            output.get('metadata', {}).pop('needs_background', None)
            if paths:
                if 'text' in output:
                    output['text'] = _hide(''.join(output['text']), paths).splitlines(True)
                plain = output.get('data', {}).get('text/plain')
                if plain is not None:
                    output['data']['text/plain'] = _hide(''.join(plain), paths).splitlines(True)
            if output.get('output_type') == 'error':
                errors.append(f"{output.get('ename')}: {output.get('evalue')}")
    nb['nbformat'], nb['nbformat_minor'] = 4, 4
    return errors


def save(nb, path):
    """Write the notebook atomically (temp file + rename)."""
    from d2l_nli.machinery.files import atomic_write
    with atomic_write(path) as f:
        f.write(json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + '\n')


def run(path, timeout):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    os.environ.setdefault('D2L_NLI_LIVE_PLOTS', '0')
    client = NotebookClient(nb, timeout=timeout, kernel_name='python3',
                            resources={'metadata': {'path': str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    return json.loads(nbformat.writes(nb)), time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('notebooks', nargs='+', type=Path)
    parser.add_argument('--clean-only', action='store_true', help='do not execute')
    parser.add_argument('--timeout', type=int, default=3600, help='seconds per cell')
    args = parser.parse_args(argv)
    status = 0
    for path in args.notebooks:
        if args.clean_only:
            nb, seconds = json.loads(path.read_text(encoding='utf-8')), 0.0
        else:
            try:
                nb, seconds = run(path, args.timeout)
            except Exception as err:  # nbclient's CellExecutionError names the cell
                print(f'{path}: FAILED, left unchanged:\n{err}', file=sys.stderr)
                status = 1
                continue
        errors = clean(nb, machine_paths())
        if errors:
            print(f'{path}: has error outputs, left unchanged: {errors}', file=sys.stderr)
            status = 1
            continue
        save(nb, path)
        print(f'{path}: saved' + (f' (ran in {seconds:.0f} s)' if seconds else ''))
    return status


if __name__ == '__main__':
    sys.exit(main())
