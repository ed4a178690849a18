from histo.cli import main


def test_help_lists_every_command(capsys):
    assert main([]) == 2
    out = capsys.readouterr().out
    for name in ("score", "segment", "measure", "train", "eval", "report"):
        assert name in out
