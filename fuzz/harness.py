"""What every fuzzer here does at start: create the corpus directories named on the command
line (libFuzzer wants them to exist), then hand the target to atheris."""

import sys
from collections.abc import Callable
from pathlib import Path

import atheris


def main(test_one_input: Callable[[bytes], None]) -> None:
    for arg in sys.argv[1:]:
        if not arg.startswith("-"):
            Path(arg).mkdir(parents=True, exist_ok=True)
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
