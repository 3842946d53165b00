"""Install d2l-nli. The version comes from d2l_nli/VERSION (no package import)."""
import importlib.util
import sys
from pathlib import Path

SUPPORTED_PYTHONS = ((3, 9), (3, 10), (3, 11))  # MXNet 1.9.1 has no wheels for newer ones


def python_problem(version_info):
    """What to tell someone installing with an unsupported Python (None: it is supported).

    pip's own answer ("requires a different Python") comes later and names no fix.
    """
    if tuple(version_info[:2]) in SUPPORTED_PYTHONS:
        return None
    found = '.'.join(map(str, version_info[:3]))
    return (f'd2l-nli needs Python 3.9, 3.10 or 3.11, but this is Python {found}: MXNet '
            '1.9.1, which the chapter uses, has no wheels for newer ones. Make a Python 3.11 '
            'environment and install into it instead, with one of:\n'
            '  conda env create -f environment.yml && conda activate d2l-nli\n'
            '  python3 -m venv .uv && .uv/bin/pip install uv && '
            '.uv/bin/uv venv --seed --python 3.11 .venv\n'
            'then run the Quick start\'s commands (README.md) without their first step, '
            '"python3 -m venv .venv &&".')


# Before anything else (even setuptools, which a new Python may lack); pip runs
# this file as __main__.
if __name__ == '__main__' and python_problem(sys.version_info):
    sys.exit(python_problem(sys.version_info))

from setuptools import Extension, find_packages, setup  # noqa: E402
from setuptools.command.build_ext import build_ext  # noqa: E402

HERE = Path(__file__).parent
VERSION = (HERE / 'd2l_nli' / 'VERSION').read_text().strip()

# mxnet-cu112 links against these CUDA 11 libraries but ships none of them;
# d2l_nli.machinery.runtime loads them from pip's nvidia-*-cu11 packages. cuBLAS >=11.10
# keeps out a 0.0.1 placeholder that does not build; cuDNN stays on 8.x.
CUDA11_LIBRARIES = [
    'nvidia-cuda-runtime-cu11>=11.2,<12',
    'nvidia-cublas-cu11>=11.10,<12',
    'nvidia-cufft-cu11>=10.7,<11',
    'nvidia-curand-cu11>=10.2,<11',
    'nvidia-cusolver-cu11>=11.4,<12',
    'nvidia-cuda-nvrtc-cu11>=11.2,<12',
    'nvidia-nvtx-cu11>=11.2,<12',
    'nvidia-cudnn-cu11>=8.5,<9',
    'nvidia-nccl-cu11>=2.13,<3',
]



def mxnet_folder():
    """Where the mxnet package is (pyproject.toml puts it in the build environment)."""
    spec = importlib.util.find_spec('mxnet')  # finds it without importing it
    return Path(spec.submodule_search_locations[0]) if spec else None


class BuildFastOps(build_ext):
    """Compile d2l_nli/csrc against the mxnet wheel's extension API; never fail the install.

    Without a C++ compiler (or the wheel's headers) d2l-nli installs and
    works with MXNet's own LayerNorm, more slowly: see d2l_nli/fast_ops.py.
    """

    def build_extensions(self):
        folder = mxnet_folder()
        if folder is None or not (folder / 'include' / 'mxnet' / 'lib_api.h').exists():
            print("d2l-nli: mxnet's extension headers were not found; installing without "
                  'the compiled LayerNorm (training is slower).')
            self.extensions = []  # nothing built, nothing to copy
            return
        for ext in self.extensions:
            ext.include_dirs.append(str(folder / 'include'))
            ext.sources.append(str(folder / 'src' / 'lib_api.cc'))
        try:
            super().build_extensions()
        except Exception as err:  # no compiler, or it failed
            print(f'd2l-nli: could not compile the fast LayerNorm ({err}). d2l-nli works '
                  'without it, more slowly; install a C++ compiler (g++ or clang++) and '
                  'reinstall to get it.')
            self.extensions = []


# The chapter as a website (python tools/book.py): d2lbook, a pandoc binary,
# MathJax for offline pages, and two pins without which d2lbook 1.0.3 stops:
# pybtex 0.25 removed _FakeEntryPoint and setuptools 82 pkg_resources, both
# imported by sphinxcontrib-bibtex.
BOOK = ['d2lbook==1.0.3', 'pypandoc-binary>=1.11', 'pybtex<0.25', 'setuptools<82',
        'sphinx-mathjax-offline>=0.0.2']

FAST_OPS = Extension('d2l_nli._fast_ops', sources=['d2l_nli/csrc/layer_norm.cc'],
                     language='c++', extra_compile_args=['-O3', '-std=c++17'],
                     libraries=['pthread'])

setup(
    name='d2l-nli',
    version=VERSION,
    description='The D2L chapter "Natural Language Inference: Fine-Tuning BERT" '
                '(MXNet), as runnable notebooks and a helper package',
    long_description=(HERE / 'README.md').read_text(encoding='utf-8'),
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    python_requires='>=3.9,<3.12',
    packages=find_packages(include=['d2l_nli', 'd2l_nli.*']),
    package_data={'d2l_nli': ['VERSION']},
    install_requires=[
        # MXNet 1.9.1 breaks on numpy>=1.24 (numpy.bool was removed).
        'numpy>=1.21,<1.24',
        # Notebook 5's baselines; tested with 1.3.2 and 1.7.2 (under numpy<1.24).
        'scikit-learn>=1.3,<1.8',
        'matplotlib>=3.5',
        'tqdm>=4.60',
        'pooch>=1.6',
        'platformdirs>=2.5',
        'requests>=2.20,<3',
    ],
    extras_require={
        # Exactly one of these two: both install the `mxnet` package.
        'cpu': ['mxnet==1.9.1'],
        'gpu': ['mxnet-cu112==1.9.1'] + CUDA11_LIBRARIES,
        'book': BOOK,
        # The tests build the book and look at it in Chromium (Debian's chromium
        # package; the test is skipped with the reason where it is absent).
        'test': ['pytest>=7', 'nbval>=0.10', 'nbclient>=0.5', 'ipykernel>=6', 'jupyter>=1.0',
                 'hypothesis>=6', 'ruff>=0.6,<0.9', 'playwright>=1.40', 'pyyaml>=5'] + BOOK,
    },
    ext_modules=[FAST_OPS],
    cmdclass={'build_ext': BuildFastOps},
    entry_points={'console_scripts': ['d2l-nli=d2l_nli.machinery.cli:main']},
    classifiers=[
        'Programming Language :: Python :: 3',
        'Programming Language :: Python :: 3.9',
        'Programming Language :: Python :: 3.10',
        'Programming Language :: Python :: 3.11',
        'Topic :: Scientific/Engineering :: Artificial Intelligence',
    ],
)
