"""The README's promises: two set-up commands, CI runs the test one, and its code names real APIs."""

import importlib
import re

from tests.conftest import REPO

README = (REPO / "README.md").read_text()


def setup_commands() -> list[str]:
    section = README.split("## Set up", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section)


def test_exactly_two_setup_commands_main_job_and_tests():
    commands = setup_commands()
    assert len(commands) == 2
    main_job, tests = commands
    assert main_job.endswith("hasten demo")
    assert tests.endswith("python -m pytest")


def test_ci_runs_the_readme_test_command():
    ci = (REPO / ".ci" / "run").read_text()
    assert setup_commands()[1] in ci.splitlines()


def test_every_name_the_readme_imports_exists():
    imports = re.findall(r"^from (hasten[\w.]*) import (.+)$", README, flags=re.MULTILINE)
    assert imports
    for module_name, names in imports:
        module = importlib.import_module(module_name)
        for name in (n.strip() for n in names.split(",")):
            assert hasattr(module, name), f"README imports {name} from {module_name}, which has no such name"


def test_every_linked_doc_exists():
    for link in re.findall(r"\]\((docs/[^)]+)\)", README):
        assert (REPO / link).exists(), f"README links to missing {link}"
