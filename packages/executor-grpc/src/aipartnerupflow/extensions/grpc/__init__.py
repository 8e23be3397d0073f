"""gRPC executor for aipartnerupflow: ``grpc_executor``, on grpcio's async API.

Importing this package imports neither grpcio nor protobuf; the first call does. Targets are
limited by the executor kit's outbound policy (non-public addresses denied by default).
"""

from __future__ import annotations

from aipartnerupflow.extensions.grpc.executor import GrpcExecutor, GrpcStatusError
from aipartnerupflow.extensions.grpc.settings import GrpcSettings

__all__ = ["GrpcExecutor", "GrpcSettings", "GrpcStatusError"]
