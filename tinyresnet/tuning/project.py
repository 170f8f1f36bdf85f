"""A search project's folder: what makes one, the files the package keeps in it, and which search may resume
in it (no TensorFlow)."""

import os

PROJECT_MARKER = "oracle.json"  # KerasTuner's saved oracle: what makes a folder a search project
SEARCH_DEFINITION = "search.json"  # what the project's trials depend on (space, budget, base, oracle)


def is_project(folder):
    """Whether `folder` is a search project: KerasTuner's oracle state is there."""
    return os.path.isfile(os.path.join(folder, PROJECT_MARKER))


def admit_search(search, project_dir, record=True):
    """Records the search's definition in a new project (unless not `record`: a worker); refuses to resume
    one of another definition (`SearchError`). The data are compared by content: the same archive by another
    path (another checkout, a relative --data) is the same search."""
    import json
    import time
    from tinyresnet import config as config_lib
    from tinyresnet import fingerprint, runs
    from tinyresnet.tuning import space as space_lib
    path = os.path.join(project_dir, SEARCH_DEFINITION)
    now = json.loads(json.dumps(space_lib.definition(search)))  # tuples as lists, as read back
    now["data_fingerprint"] = fingerprint.data_fingerprint(search.base.data)
    saved = runs.read_json(path)
    if saved is not None:
        saved = {"hyperband_iterations": 1, **saved}  # a project from before the key existed
        before = saved.get("base", {}).get("data")
        if fingerprint.same_data(before, search.base.data, saved.get("data_fingerprint")):
            now["base"]["data"] = before
        now["data_fingerprint"] = saved.get("data_fingerprint")  # compared through base.data
        if isinstance(saved.get("base"), dict):  # by today's run-defining keys (augment_on became an execution key)
            saved["base"] = json.loads(json.dumps(config_lib.run_defining(saved["base"])))
    if saved is None:
        if is_project(project_dir) or not record:
            return  # a project of an older version, or a worker's before its chief: nothing to compare with
        os.makedirs(project_dir, exist_ok=True)
        runs.write_json(path, now)
        runs.write_json(os.path.join(project_dir, space_lib.STARTED), {"time": time.time()})
        return
    changes = space_lib.definition_changes(saved, now)
    if changes:
        raise space_lib.SearchError(
            f"{project_dir} holds a search of another definition ({'; '.join(changes)}); KerasTuner would resume "
            "the old one. Give another --project-dir for the new search, or undo the change to resume")
