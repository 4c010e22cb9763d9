"""Workflow commands: check a config before Snakemake reads it.

Snakemake reads every ``--configfile`` before the Snakefile runs, and its own
message for an empty or broken YAML file names neither the file nor the line;
``mobopt check-config FILE`` does, and checks the merged config as the workflow will.
"""

from __future__ import annotations

from pathlib import Path

from mobopt.cli._args import add_command

#: The schema beside the package in a source checkout (src/mobopt/cli/ -> the repository).
SCHEMA = Path(__file__).resolve().parents[3] / "workflow/schemas/config.schema.yaml"


def cmd_check_config(a):
    from mobopt.workflow import config as workflow_config
    from mobopt.workflow.plan import Plan

    config, used = workflow_config.compose(a.files, a.base)
    workflow_config.validate(config, a.schema, used)
    plan = Plan(config)  # the registry names (datasets, variants, devices); warnings as the dry run prints them
    for warning in plan.warnings:
        print(f"warning: {warning}")
    print(f"ok: {' + '.join(used)}: experiments {', '.join(plan.experiments)}")


def register(sub) -> None:
    s = add_command(sub, "check-config", cmd_check_config,
                    "check config files as `snakemake --configfile FILE ...` merges them: one line per problem")
    s.add_argument("files", nargs="*", metavar="FILE",
                   help="config files in --configfile order (none: the paper config alone)")
    s.add_argument("--base", default="config/config.yaml",
                   help="the paper config the files are layered over unless they set replace_workflow_config: true")
    s.add_argument("--schema", default=str(SCHEMA) if SCHEMA.is_file() else "workflow/schemas/config.schema.yaml",
                   help="the config's JSON schema")
