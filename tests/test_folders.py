"""folders: output folders made up front, with errors that name what is in the way."""

import pytest

from gnuradio.specenc.folders import make_folder, make_parent


def test_folders_are_made_and_a_file_in_the_way_is_named(tmp_path):
    assert make_parent(tmp_path / "a" / "b" / "out.json") == str(tmp_path / "a" / "b")
    assert (tmp_path / "a" / "b").is_dir()
    (tmp_path / "afile").write_text("x")
    for bad in (lambda: make_folder(tmp_path / "afile"), lambda: make_parent(tmp_path / "afile" / "deeper" / "o.png")):
        with pytest.raises(NotADirectoryError, match=f"{tmp_path / 'afile'} is a file, not a folder"):
            bad()


def test_a_link_to_nothing_is_named(tmp_path):
    (tmp_path / "gone").symlink_to(tmp_path / "nowhere")
    with pytest.raises(NotADirectoryError, match="gone is a link to nothing, not a folder"):
        make_parent(tmp_path / "gone" / "out.json")
    (tmp_path / "afile").write_text("x")
    (tmp_path / "tofile").symlink_to(tmp_path / "afile")
    with pytest.raises(NotADirectoryError, match="tofile is a file, not a folder"):
        make_parent(tmp_path / "tofile" / "out.json")


def test_a_folder_no_file_can_be_written_in_is_refused_before_the_work():
    """/proc passes os.access for root, and `specenc run --out /proc/x` failed only after the whole run, naming
    its .tmp file (audit 53)."""
    with pytest.raises(PermissionError, match="/proc: cannot write in it"):
        make_parent("/proc/run.sigmf-meta")
