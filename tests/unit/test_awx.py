"""AWX/Tower packaging: the job templates as code (awx/controller.yml, applied by playbooks/awx-configure.yml), their
surveys against the roles' argument specs, prompt-free playbooks, every playbook through ansible-runner, and the
execution environment's build context from ``ansible-builder create``.

What this does not prove: no AWX is reached (the awx.awx calls are linted and syntax-checked, not run), no image
is built, and the ansible-runner runs load and parse each playbook (``--syntax-check``, ``--list-tasks``) without
a terminal; they do not run it against nodes (the lab tier does that from a terminal).
"""

import concurrent.futures
import glob
import os
import re
import subprocess
import sys

import ansible_runner
import jinja2.nativetypes
import pytest
import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
EE_FILE = os.path.join(REPO, "execution-environment.yml")
CONTROLLER_FILE = os.path.join(REPO, "awx", "controller.yml")
CONFIGURE = "awx-configure.yml"

# Playbooks without a job template, each with the reason.
NO_JOB_TEMPLATE = {
    CONFIGURE: "it creates the project, inventory and job templates; it runs from a terminal before they exist",
}
# Playbooks whose job template has no check-mode twin, each with the reason (every playbook supports --check today).
NO_CHECK_TWIN = {}
# Survey variables that are no role's argument, each with the playbook that reads it and the reason.
PLAYBOOK_LEVEL = {
    "reset_node_confirm": ("reset-node.yml", "the playbook's own guard (its first play refuses a run that does not "
                                             "name a node of the inventory); no role takes it"),
    "reset_node_destroys_cluster": ("reset-node.yml", "the playbook's second guard, for the control plane (read "
                                                      "with | bool); no role takes it"),
    "restore_etcd_confirm": ("restore-etcd.yml", "the playbook's own guard (its first play refuses a run whose "
                                                 "confirmation is not the snapshot's file name); no role takes it"),
}
SURVEY_TYPES = {"text", "textarea", "password", "integer", "float", "multiplechoice", "multiselect"}
# Hosts of public container registries, spelled in parts so that this file does not contain them either.
REGISTRY_HOSTS = [".".join(parts) for parts in (
    ("quay", "io"), ("ghcr", "io"), ("docker", "io"), ("registry-1", "docker", "io"), ("index", "docker", "io"),
    ("registry", "redhat", "io"), ("registry", "access", "redhat", "com"), ("gcr", "io"), ("registry", "k8s", "io"),
    ("k8s", "gcr", "io"), ("mcr", "microsoft", "com"), ("nvcr", "io"), ("public", "ecr", "aws"),
    ("registry", "gitlab", "com"), ("registry", "fedoraproject", "org"), ("docker", "com"))]
# Where AWX points a job's collection and role search paths (awx/main/tasks/jobs.py, build_env); ansible-core 2.19
# reads only the singular ANSIBLE_COLLECTIONS_PATH, so the project's ansible.cfg decides, as in a terminal.
AWX_ENV = {
    "ANSIBLE_COLLECTIONS_PATHS": "/runner/requirements_collections:~/.ansible/collections:/usr/share/ansible/collections",
    "ANSIBLE_ROLES_PATH": "/runner/requirements_roles:~/.ansible/roles:/usr/share/ansible/roles:/etc/ansible/roles",
    "ANSIBLE_FORCE_COLOR": "0",
    "ANSIBLE_NOCOLOR": "1",
}


class _Loader(yaml.SafeLoader):  # pylint: disable=too-many-ancestors
    """YAML as Ansible writes it: tags such as !unsafe and !vault read as the value they wrap."""


def _any_tag(loader, unused_suffix, node):
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)


_Loader.add_multi_constructor("!", _any_tag)


def load(path):
    with open(path) as handle:
        return yaml.load(handle, Loader=_Loader)  # nosec - a SafeLoader subclass


def controller():
    return load(CONTROLLER_FILE)


def job_templates():
    return controller()["dgx_spark_awx_job_templates"]


def playbooks():
    return sorted(os.path.basename(path) for path in glob.glob(os.path.join(REPO, "playbooks", "*.yml")))


def role_options():
    """Every role argument: name -> [(role/entry point, its spec)]."""
    options = {}
    for path in sorted(glob.glob(os.path.join(REPO, "roles", "*", "meta", "argument_specs.yml"))):
        role = path.split(os.sep)[-3]
        for entry_point, spec in load(path)["argument_specs"].items():
            for name, option in (spec.get("options") or {}).items():
                options.setdefault(name, []).append(("%s/%s" % (role, entry_point), option))
    return options


def inventory_hosts(group):
    """The hosts of a group of inventory/hosts.yml, children included."""
    def walk(node):
        node = node or {}
        hosts = list((node.get("hosts") or {}).keys())
        for child in (node.get("children") or {}).values():
            hosts.extend(walk(child))
        return hosts

    def find(tree):
        for name, node in (tree or {}).items():
            if name == group:
                return walk(node)
            found = find((node or {}).get("children"))
            if found is not None:
                return found
        return None

    return find(load(os.path.join(REPO, "inventory", "hosts.yml")))


def choices_of(question):
    """A question's choices; a template (the inventory's nodes) rendered with the inventory's groups."""
    choices = question.get("choices")
    if isinstance(choices, str):
        template = jinja2.nativetypes.NativeEnvironment().from_string(choices)
        choices = template.render(groups={"spark_cluster": inventory_hosts("spark_cluster")})
    return choices


def survey_questions():
    return [(template["playbook"], question) for template in job_templates() for question in template["survey"]]


def survey_ids():
    return ["%s:%s" % (os.path.basename(playbook), question["variable"]) for playbook, question in survey_questions()]


def inventory_variables():
    """Every variable the AWX inventory source (inventory/hosts.yml, its group_vars and host_vars) sets."""
    names = set()

    def walk(group):
        group = group or {}
        names.update(group.get("vars") or {})
        for host_vars in (group.get("hosts") or {}).values():
            names.update(host_vars or {})
        for child in (group.get("children") or {}).values():
            walk(child)

    for group in (load(os.path.join(REPO, "inventory", "hosts.yml")) or {}).values():
        walk(group)
    for part in ("group_vars", "host_vars"):
        for path in glob.glob(os.path.join(REPO, "inventory", part, "**", "*.yml"), recursive=True):
            names.update(load(path) or {})
    return names


# --- (a) surveys ---------------------------------------------------------------------------------------------------

def survey_type_problems(question, option):
    """How a survey question disagrees with the argument spec of the variable it sets ([] when it agrees)."""
    kind, spec_type = question["type"], option.get("type", "str")
    choices, spec_choices = choices_of(question), option.get("choices")
    problems = []
    if kind in ("text", "textarea"):
        if spec_type != "str" or spec_choices:
            problems.append("%s is free text, the spec says %s with choices %s" % (kind, spec_type, spec_choices))
    elif kind == "integer":
        if spec_type != "int":
            problems.append("integer question, the spec says %s" % spec_type)
    elif kind == "float":
        if spec_type != "float":
            problems.append("float question, the spec says %s" % spec_type)
    elif kind == "password":
        if spec_type != "str" or not option.get("no_log"):
            problems.append("password question, the spec says %s without no_log" % spec_type)
    elif kind == "multiplechoice":
        # AWX has no boolean question: a boolean is the choice of "false" and "true" (the spec converts them).
        if spec_type == "bool":
            if choices != ["false", "true"]:
                problems.append("boolean %s offered as %s, not ['false', 'true']" % (question["variable"], choices))
        elif spec_type != "str" or choices != spec_choices:
            problems.append("multiplechoice %s, the spec says %s with choices %s" % (choices, spec_type, spec_choices))
    elif kind == "multiselect":
        if spec_type != "list" or (option.get("choices") and not set(choices) <= set(option["choices"])):
            problems.append("multiselect, the spec says %s with choices %s" % (spec_type, spec_choices))
    # Launching without touching the survey behaves like a terminal run without -e.
    default = option.get("default")
    expected = ("true" if default else "false") if spec_type == "bool" else default
    if question.get("default") != expected:
        problems.append("survey default %r, the role's default %r" % (question.get("default"), expected))
    return problems


@pytest.mark.parametrize("playbook,question", survey_questions(), ids=survey_ids())
def test_survey_question_is_well_formed(playbook, question):
    assert {"question_name", "variable", "type", "required", "default"} <= set(question), question
    assert question["type"] in SURVEY_TYPES
    assert re.match(r"^[a-z_][a-z0-9_]*$", question["variable"])
    if question["type"] in ("multiplechoice", "multiselect"):
        choices = choices_of(question)
        assert isinstance(choices, list) and choices and all(isinstance(choice, str) for choice in choices)
        assert question["default"] in choices or (question["default"] == "" and question["required"]), playbook


@pytest.mark.parametrize("playbook,question", survey_questions(), ids=survey_ids())
def test_survey_variable_is_a_role_argument_with_the_same_type_choices_and_default(playbook, question):
    name = question["variable"]
    declared = role_options().get(name)
    if name in PLAYBOOK_LEVEL:
        assert not declared, "%s is a role argument now: remove it from PLAYBOOK_LEVEL" % name
        return
    assert declared, "%s (survey of %s) is no role's argument" % (name, playbook)
    for where, option in declared:
        assert survey_type_problems(question, option) == [], where


@pytest.mark.parametrize("name", sorted(PLAYBOOK_LEVEL))
def test_playbook_level_survey_variables_are_read_by_their_playbook(name):
    playbook, unused_reason = PLAYBOOK_LEVEL[name]
    questions = [question for path, question in survey_questions()
                 if question["variable"] == name and os.path.basename(path) == playbook]
    assert questions, "%s is listed as a playbook-level survey variable but no survey of %s asks for it" % (name, playbook)
    with open(os.path.join(REPO, "playbooks", playbook)) as handle:
        text = handle.read()
    assert name in text
    for question in questions:
        if name == "reset_node_confirm":
            # The playbook refuses any name outside groups['spark_cluster']: the survey offers exactly those nodes.
            assert "reset_node_confirm | default('') in groups['spark_cluster']" in text
            assert choices_of(question) == inventory_hosts("spark_cluster") == ["spark-2959", "spark-ba63"]
            assert question["required"] and question["default"] == ""
        if name == "reset_node_destroys_cluster":
            assert "reset_node_destroys_cluster | default(false) | bool" in text
            assert choices_of(question) == ["false", "true"] and question["default"] == "false"


def test_no_survey_variable_is_set_by_the_inventory():
    # A survey answer is an extra var: it would silently win over the inventory's value.
    asked = {question["variable"] for unused_playbook, question in survey_questions()}
    assert asked & inventory_variables() == set()


def test_inventory_variables_are_read():
    # The scan above reads the inventory it guards (a broken walk would make it vacuous).
    names = inventory_variables()
    assert {"ansible_host", "spark_ssh_user", "kubernetes_controller_kubeconfig", "fabric_mtu"} <= names


def test_credential_injects_only_variables_the_project_knows():
    injected = controller()["dgx_spark_awx_access_injectors"]["extra_vars"]
    options = role_options()
    for name in injected:
        assert name in options or name in inventory_variables() or name.startswith("ansible_"), name
    assert set(controller()["dgx_spark_awx_access_inputs"]["required"]) == {
        field["id"] for field in controller()["dgx_spark_awx_access_inputs"]["fields"]}


# --- (b) one job template per playbook ------------------------------------------------------------------------------

def test_every_playbook_has_a_job_template_and_every_job_template_names_a_playbook():
    named = [os.path.relpath(template["playbook"], "playbooks") for template in job_templates()]
    assert all(template["playbook"].startswith("playbooks/") for template in job_templates())
    assert len(named) == len(set(named)), "one job template (and its check twin) per playbook"
    assert sorted(named) == sorted(set(playbooks()) - set(NO_JOB_TEMPLATE))
    assert set(NO_JOB_TEMPLATE) <= set(playbooks())
    assert len({template["name"] for template in job_templates()}) == len(job_templates())


@pytest.mark.parametrize("template", job_templates(), ids=lambda template: template["playbook"])
def test_job_template_has_its_check_mode_twin(template):
    expected = ["run"] if os.path.basename(template["playbook"]) in NO_CHECK_TWIN else ["run", "check"]
    assert template["job_types"] == expected


def test_configure_playbook_takes_controller_credentials_from_the_environment_and_hides_secrets():
    with open(os.path.join(REPO, "playbooks", CONFIGURE)) as handle:
        text = handle.read()
    assert not re.search(r"controller_(host|username|password|oauthtoken)\s*:", text)
    assert "../awx/controller.yml" in text
    for task in load(os.path.join(REPO, "playbooks", CONFIGURE))[0]["tasks"]:
        module = [key for key in task if key.startswith("awx.awx.") or key.startswith("ansible.builtin.")]
        assert module, task["name"]
        if "kubeconfig" in yaml.safe_dump(task.get(module[0])) and module[0] == "awx.awx.credential":
            assert task.get("no_log") is True, task["name"]


# --- (c) no prompts -------------------------------------------------------------------------------------------------

PAUSE = ("pause", "ansible.builtin.pause", "ansible.legacy.pause")


def prompts(node, where=""):
    """Every vars_prompt, and every pause that waits for a person (a prompt, or no seconds/minutes), in a YAML tree."""
    found = []
    if isinstance(node, list):
        for index, item in enumerate(node):
            found += prompts(item, "%s[%d]" % (where, index))
    elif isinstance(node, dict):
        if "vars_prompt" in node:
            found.append("%s: vars_prompt" % where)
        for key in PAUSE:
            if key in node:
                args = node[key]
                text = args if isinstance(args, str) else " ".join("%s=%s" % item for item in (args or {}).items())
                if "prompt" in text or not re.search(r"\b(seconds|minutes)\s*=", text):
                    found.append("%s: %s %s" % (where, key, text))
        for key in ("action", "local_action"):
            value = node.get(key)
            if isinstance(value, str) and value.split()[0] in PAUSE:
                found.append("%s: %s: %s" % (where, key, value))
            elif isinstance(value, dict) and value.get("module") in PAUSE:
                found.append("%s: %s: %s" % (where, key, value))
        for key, value in node.items():
            found += prompts(value, "%s.%s" % (where, key) if where else str(key))
    return found


def yaml_task_and_play_files():
    files = glob.glob(os.path.join(REPO, "playbooks", "*.yml"))
    for part in ("tasks", "handlers"):
        files += glob.glob(os.path.join(REPO, "roles", "*", part, "**", "*.yml"), recursive=True)
    return sorted(files)


def test_no_playbook_or_role_task_prompts():
    files = yaml_task_and_play_files()
    assert len(files) > 20 and any("/roles/worker/tasks/" in path for path in files)
    found = []
    for path in files:
        found += ["%s %s" % (os.path.relpath(path, REPO), hit) for hit in prompts(load(path))]
    assert found == []


@pytest.mark.parametrize("snippet,hits", [
    ("- hosts: all\n  vars_prompt:\n    - name: x\n      prompt: X?\n", 1),
    ("- name: Wait\n  ansible.builtin.pause:\n    prompt: Press enter\n", 1),
    ("- name: Wait\n  ansible.builtin.pause:\n", 1),
    ("- name: Wait\n  pause: minutes=1\n", 0),
    ("- name: Wait\n  ansible.builtin.pause:\n    seconds: 5\n", 0),
    ("- name: Wait\n  action: pause prompt=Continue\n", 1),
])
def test_the_prompt_scan_finds_prompts(snippet, hits):
    assert len(prompts(yaml.safe_load(snippet))) == hits


# --- (d) every playbook through ansible-runner, without a terminal --------------------------------------------------

def _run_playbook(playbook, mode, private_data_dir):
    """--syntax-check through ansible_runner.run as AWX runs jobs (pexpect: a pseudo-terminal nobody types into,
    no passwords; a prompt would end as 'timeout'); --list-tasks through ansible_runner.run_command in subprocess
    mode with stdin from /dev/null (no terminal at all). Both from the repository root as AWX's project directory."""
    inventory = os.path.join(REPO, "inventory", "lab", "hosts.yml")
    # The ansible-playbook of this Python environment (ansible-runner looks it up on PATH).
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    common = {"private_data_dir": private_data_dir, "project_dir": REPO, "envvars": dict(AWX_ENV, PATH=path), "quiet": True,
              "timeout": 240, "cancel_callback": lambda: False}
    if mode == "--syntax-check":
        runner = ansible_runner.run(playbook=os.path.join("playbooks", playbook), inventory=inventory,
                                    cmdline="--syntax-check", passwords={}, settings={"idle_timeout": 120}, **common)
        with open(os.path.join(runner.config.artifact_dir, "stdout")) as handle:
            return runner.status, runner.rc, handle.read()
    with open(os.devnull) as devnull:
        out, err, rc = ansible_runner.run_command(
            executable_cmd=os.path.join(os.path.dirname(sys.executable), "ansible-playbook"),
            cmdline_args=[os.path.join("playbooks", playbook), "-i", inventory, "--list-tasks"],
            runner_mode="subprocess", input_fd=devnull, host_cwd=REPO, **common)
    return ("successful" if rc == 0 else "failed"), rc, out + err


@pytest.fixture(scope="module")
def runner_results(tmp_path_factory):
    jobs = [(playbook, mode) for playbook in playbooks() for mode in ("--syntax-check", "--list-tasks")]
    with pytest.MonkeyPatch.context() as patch:
        # AWX's environment, not the test runner's: tests/run.sh points ANSIBLE_COLLECTIONS_PATH at the checkout.
        for name in ("ANSIBLE_COLLECTIONS_PATH", "ANSIBLE_CONFIG", "ANSIBLE_INVENTORY"):
            patch.delenv(name, raising=False)
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
            futures = {job: pool.submit(_run_playbook, job[0], job[1], str(tmp_path_factory.mktemp("runner")))
                       for job in jobs}
            return {job: future.result() for job, future in futures.items()}


def plays_of(playbook):
    """The plays of a playbook, those of the playbooks it imports (ansible.builtin.import_playbook) in their place."""
    plays = []
    for play in load(os.path.join(REPO, "playbooks", playbook)):
        imported = play.get("ansible.builtin.import_playbook")
        plays += plays_of(imported) if imported else [play]
    return plays


def test_plays_of_follows_imports():
    assert [play["name"] for play in plays_of("wake-cluster.yml")][-1] == plays_of("start-cluster.yml")[-1]["name"]


@pytest.mark.parametrize("mode", ["--syntax-check", "--list-tasks"])
@pytest.mark.parametrize("playbook", playbooks())
def test_playbook_loads_through_ansible_runner_without_a_terminal(runner_results, playbook, mode):
    status, rc, output = runner_results[(playbook, mode)]
    assert (status, rc) == ("successful", 0), output[-3000:]
    if mode == "--list-tasks":
        # Every play was parsed, not only the first.
        for play in plays_of(playbook):
            assert play["name"] in output, play["name"]


# --- (e) the execution environment -----------------------------------------------------------------------------------

def pins(path):
    found = {}
    with open(path) as handle:
        for line in handle:
            match = re.match(r"^\s*([A-Za-z0-9_.\-\[\]]+)==(\S+)", line)
            if match:
                found[match.group(1).split("[")[0].lower()] = match.group(2)
    return found


@pytest.fixture(scope="module")
def ee_context(tmp_path_factory):
    work = tmp_path_factory.mktemp("ee")
    result = subprocess.run([sys.executable, "-m", "ansible_builder", "create", "-f", EE_FILE,
                             "-c", str(work / "context"), "--output-filename", "Containerfile"],
                            cwd=str(work), capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return work / "context"


def test_ee_context_holds_the_python_system_and_collection_requirements(ee_context):
    controller_pins = pins(os.path.join(REPO, "requirements.txt"))
    containerfile = (ee_context / "Containerfile").read_text()
    # ansible-core, the ansible package (its collections) and ansible-runner: the controller's pins.
    refs = re.search(r'^ARG ANSIBLE_INSTALL_REFS="([^"]*)"', containerfile, re.M).group(1).split()
    assert sorted(refs) == sorted("%s==%s" % (name, controller_pins[name])
                                  for name in ("ansible-core", "ansible", "ansible-runner"))
    assert re.search(r'^ARG ANSIBLE_GALAXY_CLI_COLLECTION_OPTS="--offline"$', containerfile, re.M)
    python = pins(str(ee_context / "_build" / "requirements.txt"))
    assert python == {"kubernetes": controller_pins["kubernetes"]}
    with open(os.path.join(REPO, "collections", "requirements.yml")) as handle:
        assert load(str(ee_context / "_build" / "requirements.yml")) == yaml.safe_load(handle)
    assert {"kubernetes.core", "community.general", "ansible.posix"} <= {
        entry["name"] for entry in load(str(ee_context / "_build" / "requirements.yml"))["collections"]}
    assert "openssh-clients [platform:rpm]" in (ee_context / "_build" / "bindep.txt").read_text()
    assert (ee_context / "_build" / "files" / "README.md").exists()
    assert "install -m 0755 /tmp/dgx-spark-ee-files/helm /usr/local/bin/helm" in containerfile


def test_ee_galaxy_stage_needs_no_galaxy(ee_context, tmp_path):
    # The galaxy stage's own commands, offline, with the pinned ansible package this venv has (the EE's pin): the
    # collections are found installed, nothing is downloaded.
    import importlib.metadata  # pylint: disable=import-outside-toplevel
    assert importlib.metadata.version("ansible") == pins(os.path.join(REPO, "requirements.txt"))["ansible"]
    galaxy = os.path.join(os.path.dirname(sys.executable), "ansible-galaxy")
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(tmp_path / "collections"), ANSIBLE_NOCOLOR="1")
    requirements = str(ee_context / "_build" / "requirements.yml")
    collections = subprocess.run([galaxy, "collection", "install", "--offline", "-r", requirements,
                                  "--collections-path", str(tmp_path / "collections")],
                                 env=env, capture_output=True, text=True, check=False, timeout=120)
    assert collections.returncode == 0, collections.stdout + collections.stderr
    assert "Nothing to do. All requested collections are already installed" in collections.stdout
    assert list((tmp_path / "collections").rglob("MANIFEST.json")) == []


def written_files():
    files = [EE_FILE, os.path.join(REPO, "playbooks", CONFIGURE), os.path.abspath(__file__),
             os.path.join(REPO, "changelogs", "fragments", "awx.yml")]
    for root, unused_dirs, names in os.walk(os.path.join(REPO, "awx")):
        files += [os.path.join(root, name) for name in names]
    return sorted(files)


def test_no_registry_host_is_written(ee_context):
    files = written_files() + [str(path) for path in ee_context.rglob("*") if path.is_file()]
    assert len(files) > 10
    found = []
    for path in files:
        with open(path, errors="replace") as handle:
            text = handle.read().lower()
        found += ["%s: %s" % (path, host) for host in REGISTRY_HOSTS if host in text]
    assert found == []
    # The base image is a plain local name: no registry host (a dot or a port in its first part, or localhost).
    name = load(EE_FILE)["images"]["base_image"]["name"]
    first = name.split("/")[0]
    assert "/" not in name or not ("." in first or ":" in first or first == "localhost"), name
