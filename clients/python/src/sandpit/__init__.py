"""Python client for Sandpit: run untrusted code in containers over Sandpit's HTTP API.

>>> import sandpit
>>> client = sandpit.Client("http://127.0.0.1:9501", api_key="sp_...")   # or $SANDPIT_URL, $SANDPIT_API_KEY
>>> client.run("python", "print(6*7)").stdout
'42\\n'
>>> with client.session("python") as s:
...     s.execute("x = 41")
...     s.execute("x + 1").text
'42'
"""

from ._version import __version__
from .async_client import AsyncClient, AsyncEnv, AsyncFiles, AsyncPackages, AsyncSession, AsyncStream
from .client import Client, Env, Files, Packages, Session, Stream
from .errors import (
    Conflict,
    ConnectionError,
    EngineUnavailable,
    Exhausted,
    Gone,
    InternalError,
    InvalidInput,
    NotFound,
    ProtocolError,
    Refused,
    SandpitError,
    Timeout,
    TooLarge,
    Unauthorized,
    Unsupported,
)
from .models import (
    Artifact,
    Chunk,
    CommandResult,
    CompileResult,
    ExecuteResult,
    ExecutionError,
    FileInfo,
    Health,
    PackageInfo,
    RunResult,
    SessionInfo,
    Usage,
)

__all__ = [
    "__version__",
    # clients
    "Client",
    "Session",
    "Files",
    "Packages",
    "Env",
    "Stream",
    "AsyncClient",
    "AsyncSession",
    "AsyncFiles",
    "AsyncPackages",
    "AsyncEnv",
    "AsyncStream",
    # results
    "Artifact",
    "Chunk",
    "CommandResult",
    "CompileResult",
    "ExecuteResult",
    "ExecutionError",
    "FileInfo",
    "Health",
    "PackageInfo",
    "RunResult",
    "SessionInfo",
    "Usage",
    # errors
    "SandpitError",
    "InvalidInput",
    "Unauthorized",
    "Refused",
    "NotFound",
    "Conflict",
    "Gone",
    "TooLarge",
    "Exhausted",
    "InternalError",
    "Unsupported",
    "EngineUnavailable",
    "Timeout",
    "ConnectionError",
    "ProtocolError",
]
