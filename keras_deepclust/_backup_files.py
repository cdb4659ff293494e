"""The files a `ClusteringBackup` writes, and removing exactly those.

A backup folder may be one the user made or named by mistake (`--resume mydocs`), so
nothing is ever removed wholesale: only the backup's own files are deleted, and then
the folders the backup created, if that leaves them empty (a folder it creates holds a
marker file saying so). Free of Keras and TensorFlow, so the command line checks a
`--resume` folder before it imports them.
"""

import re
from pathlib import Path

LATEST = "latest.json"
MARKER = ".made-by-keras-deepclust"
# The command line's --resume DIR holds one backup folder per phase.
PHASES = ("pretraining", "clustering")
_OWN_FILE = re.compile(r"^(latest\.json|epoch-\d+\.weights\.h5|\.tmp-\d+\.weights\.h5"
                       r"|\.latest\.[\w-]+\.json|" + re.escape(MARKER) + ")$")


def weights_name(epoch):
    """The weights file of the backup made at the end of `epoch` (counted from 1)."""
    return f"epoch-{epoch}.weights.h5"


def temporary_weights_name(pid):
    return f".tmp-{pid}.weights.h5"


def make_folder(folder):
    """Creates `folder` (and its parents) if it does not exist, marked as the backup's,
    so that removing the backup may remove it too."""
    folder = Path(folder)
    if not folder.exists():
        folder.mkdir(parents=True)
        (folder / MARKER).touch()


def foreign_entries(folder, phases=None):
    """What `folder` holds that no backup wrote, as paths relative to it, sorted; with
    `phases`, the backups are in those sub-folders (the command line's layout)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    backup_dirs = [folder] if phases is None else [folder / phase for phase in phases]
    foreign = []
    for entry in folder.rglob("*"):
        if entry.is_dir():
            own = entry in backup_dirs
        else:
            own = (entry.parent in backup_dirs and _OWN_FILE.match(entry.name)
                   or entry == folder / MARKER)
        if not own:
            foreign.append(entry)
    return sorted(str(entry.relative_to(folder)) for entry in foreign)


def remove_backup(folder, phases=None):
    """Removes the backup files in `folder` (or in its `phases` sub-folders), then each
    of those folders that the backup created (`make_folder`) if it is left empty.
    Anything else stays where it is."""
    folder = Path(folder)
    backup_dirs = [folder] if phases is None else [folder / phase for phase in phases]
    for backup_dir in backup_dirs:
        if not backup_dir.is_dir():
            continue
        for entry in backup_dir.iterdir():
            if entry.is_file() and _OWN_FILE.match(entry.name) and entry.name != MARKER:
                entry.unlink(missing_ok=True)
        _remove_if_empty(backup_dir)
    _remove_if_empty(folder)


def _remove_if_empty(folder):
    if not (folder / MARKER).is_file():
        return  # the user's folder
    if [entry.name for entry in folder.iterdir()] == [MARKER]:
        (folder / MARKER).unlink()
        folder.rmdir()
