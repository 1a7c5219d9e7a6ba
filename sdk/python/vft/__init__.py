"""Python client for a VFT node's local API.

>>> import vft
>>> client = vft.Client()                       # finds the daemon like the CLI
>>> job = client.submit(spec="examples/nninfer/job.toml")
>>> job.wait()                                  # prints the stages as they happen
>>> job.result("./result")

Standard library only; NumPy is used by :meth:`Job.result_array` when it is
installed.
"""

from .client import (
    APIError,
    Client,
    DaemonNotFound,
    Job,
    JobFailed,
    VFTError,
)

__all__ = ["APIError", "Client", "DaemonNotFound", "Job", "JobFailed", "VFTError"]
__version__ = "0.1.0"
