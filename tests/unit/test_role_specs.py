"""Every role's meta/argument_specs.yml and defaults/main.yml say the same thing.

* each variable in defaults/ is declared in the argument spec (any entry point), with the same default (a default
  that is a template, derived from other variables when the role runs, may be declared without a default);
* each default declared in the spec is in defaults/, with the same value (the spec's default is documentation:
  Ansible takes the value from defaults/);
* internal variables (``_<role>_...``) live in vars/, never in defaults/ where an inventory could override them.
"""

import glob
import os

import pytest
import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ROLES = sorted(os.path.basename(os.path.dirname(os.path.dirname(path)))
               for path in glob.glob(os.path.join(REPO, "roles", "*", "meta", "argument_specs.yml")))


def load(role, *parts):
    path = os.path.join(REPO, "roles", role, *parts)
    if not os.path.isfile(path):
        return {}
    with open(path) as handle:
        return yaml.safe_load(handle) or {}


def entry_points(role):
    return sorted((load(role, "meta", "argument_specs.yml").get("argument_specs") or {}).items())


def options(role):
    """Options of every entry point of the role (main, and any other the role declares)."""
    merged = {}
    for _entry, spec in entry_points(role):
        merged.update((spec or {}).get("options") or {})
    return merged


def spec_defaults(role):
    """(entry point, name, default) for every option that declares a default."""
    return [(entry, name, option["default"]) for entry, spec in entry_points(role)
            for name, option in sorted(((spec or {}).get("options") or {}).items()) if "default" in option]


def is_template(value):
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def test_every_role_has_an_argument_spec():
    roles = sorted(os.path.basename(path) for path in glob.glob(os.path.join(REPO, "roles", "*")) if os.path.isdir(path))
    assert ROLES == roles


@pytest.mark.parametrize("role", ROLES)
def test_each_default_is_declared_with_the_same_value(role):
    spec = options(role)
    wrong = []
    for name, value in sorted(load(role, "defaults", "main.yml").items()):
        if name.startswith("_"):
            continue  # reported by test_internal_variables_live_in_vars
        if name not in spec:
            wrong.append("%s is in defaults/ but not declared in the argument spec" % name)
        elif is_template(value):
            if "default" in spec[name] and spec[name]["default"] != value:
                wrong.append("%s: defaults/ derives it (%s) but the spec declares default %r" % (name, value, spec[name]["default"]))
        elif "default" not in spec[name]:
            wrong.append("%s: defaults/ has %r but the spec declares no default" % (name, value))
        elif spec[name]["default"] != value:
            wrong.append("%s: defaults/ has %r, the spec %r" % (name, value, spec[name]["default"]))
    assert wrong == []


@pytest.mark.parametrize("role", ROLES)
def test_each_spec_default_is_in_defaults(role):
    defaults = load(role, "defaults", "main.yml")
    wrong = []
    for entry, name, default in spec_defaults(role):
        if name not in defaults:
            wrong.append("%s %s: the spec declares default %r but defaults/ has no such variable" % (entry, name, default))
        elif defaults[name] != default:
            wrong.append("%s %s: the spec declares default %r, defaults/ has %r" % (entry, name, default, defaults[name]))
    assert wrong == []


@pytest.mark.parametrize("role", ROLES)
def test_internal_variables_live_in_vars(role):
    internal = sorted(name for name in load(role, "defaults", "main.yml") if name.startswith("_"))
    assert internal == [], "move %s to roles/%s/vars/main.yml" % (", ".join(internal), role)
