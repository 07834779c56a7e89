"""tiercel-scripts: run Shell, Python and Node code as Tiercel tasks.

Imports nothing on purpose: this package is also put on the ``PYTHONPATH`` of Python
scripts (for :mod:`tiercel_scripts.helper`), where Tiercel itself may not be installed.
"""

__version__ = "0.1.0"
