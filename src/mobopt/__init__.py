"""mobopt: train, convert, evaluate and benchmark image classifiers for mobile (LiteRT).

One subpackage per stage (``common``, ``litert``, ``datasets``, ``models``,
``optimize``, ``evaluate``, ``bench``, ``report``, ``workflow``, ``cli``);
their layers are contracts checked by import-linter (``make lint``).  The
Snakemake rules only call the ``mobopt`` command.  Importing the package is
cheap and TF-free on purpose: the benchmark stage must run in a process that
never loads TensorFlow, so heavy imports live inside the functions that need
them.
"""

__version__ = "0.1.0"


class MobOptError(Exception):
    """An error with a message meant for the user: it names the file or key and what to do.

    The CLI prints it as one line and exits with status 1 instead of a traceback.
    """
