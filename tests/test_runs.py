"""The run directory: what is a run, and what may be deleted (no TensorFlow)."""

import pytest

from tinyresnet import config as config_lib
from tinyresnet import runs
from tinyresnet.runs import RunDirError


def test_a_folder_with_a_config_json_but_no_marker_is_not_a_run(tmp_path):
    # u/config.json + u/backup/db.sql: --overwrite used to take it for a run and delete both.
    user = tmp_path / "u"
    (user / "backup").mkdir(parents=True)
    (user / "config.json").write_text('{"mine": true}')
    (user / "backup" / "db.sql").write_text("keep me")
    assert not runs.is_run(str(user))
    for overwrite in (True, False):
        with pytest.raises(RunDirError, match=r"not a tinyresnet run directory .*config\.json.*nothing was deleted"):
            runs.check(str(user), {"net": "net1"}, config_lib.run_defining, overwrite=overwrite)
    with pytest.raises(RunDirError, match="refusing to delete"):
        runs.remove_run(str(user))
    assert (user / "config.json").read_text() == '{"mine": true}'
    assert (user / "backup" / "db.sql").read_text() == "keep me"
    (user / runs.MARKER).write_text("")  # how the README says to adopt a run written before the marker
    assert runs.is_run(str(user))
