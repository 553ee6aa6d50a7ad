from dataclasses import dataclass

import pytest

from wmpo.cli import parse_config


@dataclass
class Cfg:
    task: str = "square"
    n: int = 3


def test_key_value_overrides():
    assert parse_config(Cfg, ["n=7", "task=stack_three"]) == Cfg(task="stack_three", n=7)


@pytest.mark.parametrize("argv,needle", [(["n=abc"], "n"), (["bogus=1"], "bogus"), (["n"], "key=value")])
def test_bad_arguments_exit_with_message(argv, needle):
    with pytest.raises(SystemExit) as err:
        parse_config(Cfg, argv)
    assert needle in str(err.value)
